//! User IDs an operator could mistake for one another: the same after Unicode compatibility
//! normalisation and case folding (`Admin`, fullwidth `ａｄｍｉｎ`, `ad\u{AD}min`), or holding
//! characters that are invisible or reorder the text around them, or mixing the Latin, Greek
//! and Cyrillic alphabets (`аdmin` with a Cyrillic `а`). Logins compare IDs exactly, so none of
//! this lets anyone in; it keeps a list of users readable. ICU4X's normaliser and character
//! properties do the Unicode work.

use icu_casemap::CaseMapperBorrowed;
use icu_normalizer::ComposingNormalizerBorrowed;
use icu_properties::props::{BidiControl, DefaultIgnorableCodePoint, Script};
use icu_properties::{CodePointMapData, CodePointSetData};

/// Why an ID is refused as a new user's, if it is.
pub fn suspicious(id: &str) -> Option<&'static str> {
    let invisible = CodePointSetData::new::<DefaultIgnorableCodePoint>();
    let bidi = CodePointSetData::new::<BidiControl>();
    if id
        .chars()
        .any(|c| invisible.contains(c) || bidi.contains(c))
    {
        return Some("contains an invisible or text-direction character");
    }
    let scripts = CodePointMapData::<Script>::new();
    let mut seen: Option<Script> = None;
    for c in id.chars() {
        let s = scripts.get(c);
        if s == Script::Latin || s == Script::Greek || s == Script::Cyrillic {
            match seen {
                Some(other) if other != s => {
                    return Some("mixes Latin, Greek or Cyrillic letters");
                }
                _ => seen = Some(s),
            }
        }
    }
    None
}

/// The form two IDs share when they look alike: NFKC, case-folded (Unicode's full folding, so
/// `STRASSE` and `straße` meet), NFKC again (folding can undo a composition), with
/// default-ignorable characters dropped. This is UAX #31's NFKC_Casefold, less its own table.
pub fn skeleton(id: &str) -> String {
    let nfkc = ComposingNormalizerBorrowed::new_nfkc();
    let invisible = CodePointSetData::new::<DefaultIgnorableCodePoint>();
    let folded = CaseMapperBorrowed::new()
        .fold_string(&nfkc.normalize(id))
        .into_owned();
    nfkc.normalize(&folded)
        .chars()
        .filter(|c| !invisible.contains(*c))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_width_and_compatibility_variants_share_a_skeleton() {
        for v in [
            "Admin",
            "ADMIN",
            "ａｄｍｉｎ",
            "ad\u{AD}min",
            "ad\u{200B}min",
            "ᵃdmin",
        ] {
            assert_eq!(skeleton(v), skeleton("admin"), "{v:?}");
        }
        assert_ne!(skeleton("admins"), skeleton("admin"));
        assert_eq!(skeleton("Ǆ"), skeleton("dž"));
        // Full case folding, not lower-casing: these differ under `to_lowercase`.
        assert_eq!(skeleton("STRASSE"), skeleton("straße"));
        assert_eq!(skeleton("ΣΊΣΥΦΟΣ"), skeleton("σίσυφος"));
        assert_eq!(skeleton("ﬁle"), skeleton("FILE"));
    }

    #[test]
    fn invisible_bidi_and_mixed_script_ids_are_suspicious() {
        for v in [
            "ad\u{200B}min",
            "ad\u{AD}min",
            "admin\u{202E}",
            "a\u{2066}b",
            "\u{FEFF}x",
        ] {
            assert!(suspicious(v).is_some(), "{v:?}");
        }
        assert!(
            suspicious("\u{430}dmin").is_some(),
            "Cyrillic a among Latin letters"
        );
        for v in ["admin", "jörg", "ÅSA", "иван", "o'brien", "user-1", "αβγ"] {
            assert_eq!(suspicious(v), None, "{v:?}");
        }
    }
}
