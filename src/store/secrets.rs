//! Secrets shared by every instance on one database (the `server_secrets` table): made once,
//! by whichever instance asks first, and read by all the others.

use diesel::prelude::*;

use super::schema::server_secrets;
use super::{on_backend, DbConnection};

/// The secret called `name`: the stored one, or `fresh` stored now when there is none yet.
/// Two instances asking at once both try to store theirs; the first insert wins and both read
/// back the same value.
pub fn get_or_make(conn: &mut DbConnection, name: &str, fresh: &str) -> QueryResult<String> {
    // ON CONFLICT is written per backend: diesel's multi-backend connection does not offer it.
    let stored = on_backend!(&mut *conn, |c| diesel::insert_into(server_secrets::table)
        .values((
            server_secrets::name.eq(name),
            server_secrets::value.eq(fresh),
        ))
        .on_conflict(server_secrets::name)
        .do_nothing()
        .execute(c));
    // A read-only database (or a lost race) may refuse the insert and still hold the secret.
    let read = server_secrets::table
        .find(name)
        .select(server_secrets::value)
        .first(conn);
    match (stored, read) {
        (Err(e), Err(_)) => Err(e),
        (_, read) => read,
    }
}
