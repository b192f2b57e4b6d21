// The tables of both backends' migrations. Kept by hand: it must fit SQLite and PostgreSQL alike.

diesel::table! {
    users (user_id) {
        user_id -> Text,
        password_hash -> Nullable<Text>,
        department -> Nullable<Text>,
        disabled -> Bool,
        admin_right -> Bool,
        update_right -> Bool,
        view_right -> Bool,
        failed_logins -> Integer,
        locked_until -> Nullable<Timestamp>,
        created_at -> Timestamp,
        source -> Text,
        dn -> Nullable<Text>,
    }
}

diesel::table! {
    sessions (session_id) {
        session_id -> Text,
        user_id -> Text,
        client_type -> Text,
        client_name -> Nullable<Text>,
        host -> Nullable<Text>,
        location -> Text,
        created_at -> Timestamp,
        created_by -> Nullable<Text>,
    }
}

diesel::table! {
    /// The one column every renewal writes, in a narrow table of its own (see its migration).
    session_activity (session_id) {
        session_id -> Text,
        last_activity -> Timestamp,
    }
}

diesel::table! {
    session_history (session_id) {
        session_id -> Text,
        user_id -> Text,
        client_type -> Text,
        client_name -> Nullable<Text>,
        host -> Nullable<Text>,
        location -> Text,
        created_at -> Timestamp,
        last_activity -> Timestamp,
        created_by -> Nullable<Text>,
        ended_at -> Timestamp,
        end_reason -> Text,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::table! {
    server_secrets (name) {
        name -> Text,
        value -> Text,
    }
}

diesel::joinable!(session_activity -> sessions (session_id));
diesel::allow_tables_to_appear_in_same_query!(
    users,
    sessions,
    session_activity,
    session_history,
    server_secrets
);
