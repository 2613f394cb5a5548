//! What the service's tests share with those of tessera-attacks, written
//! once: not part of the API (hidden from the documentation).

/// A fresh, empty database on the PostgreSQL server at `base` (a
/// `postgres://` URL, such as `TESSERA_TEST_PG_URL` names): its URL.
#[doc(hidden)]
pub async fn fresh_pg_database(base: &str) -> Result<String, String> {
    use sqlx::{Connection, Executor};
    let mut conn = sqlx::postgres::PgConnection::connect(base)
        .await
        .map_err(|e| format!("cannot reach PostgreSQL at {base}: {e}"))?;
    let suffix = crate::crypto::random_token(9).map_err(|e| e.to_string())?;
    let name = format!(
        "tessera_t_{}",
        suffix.to_ascii_lowercase().replace(['-', '_'], "x")
    );
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .map_err(|e| e.to_string())?;
    conn.close().await.map_err(|e| e.to_string())?;
    let (without_query, query) = match base.split_once('?') {
        Some((u, q)) => (u, format!("?{q}")),
        None => (base, String::new()),
    };
    let (server, _) = without_query
        .rsplit_once('/')
        .ok_or_else(|| format!("{base} names no database"))?;
    Ok(format!("{server}/{name}{query}"))
}
