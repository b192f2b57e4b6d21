//! Puts the commit being built into `SESSIOND_COMMIT` for `sessiond --version`. A tarball has no
//! `.git` and a machine may have no git: then it is "unknown", never a failed build.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let commit = git(&["rev-parse", "--short=12", "HEAD"]);
    // Rebuilt when HEAD moves: HEAD itself (a checkout), the branch it points to (a commit) and
    // packed-refs (a gc). In a worktree `.git` is a file, so ask git where these live.
    // A path that does not exist would rerun this script on every build, so only those that do.
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    let names = ["HEAD", "packed-refs"].into_iter().chain(branch.as_deref());
    for name in names {
        if let Some(path) = git(&["rev-parse", "--git-path", name]) {
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    println!(
        "cargo:rustc-env=SESSIOND_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
}
