//! The service commands: `serve`, `clients`, `keys`.

use std::path::PathBuf;
use std::process::ExitCode;

use tessera_jose::jwt::{Clock, SystemClock};
use tessera_server::config::{Config, LogFormat};
use tessera_server::keys::{self, Lifecycle};
use tessera_server::store::Store;
use tessera_server::{Server, StartError};

use crate::{AdminsCommand, AuditCommand, ClientsCommand, KeysCommand, RegistrationArgs};
use tessera_server::store::Registration;

/// The registration the options describe, over `base` (what is registered
/// now, or nothing for a new client): the options given replace their list.
fn registration(args: RegistrationArgs, base: Registration) -> Registration {
    let split = |list: Vec<String>| -> Vec<String> {
        list.iter()
            .flat_map(|item| item.split([',', ' ']))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    Registration {
        audiences: args.audience.map(split).or(base.audiences),
        scopes: args.scope.map(split).unwrap_or(base.scopes),
        may_act: args.may_act.map(split).unwrap_or(base.may_act),
        introspect: args.introspect.map(split).unwrap_or(base.introspect),
        dpop_required: args
            .dpop
            .map_or(base.dpop_required, |d| d == crate::DpopPolicy::Required),
    }
}

/// One line per registration field, for humans.
fn print_registration(r: &Registration) {
    let list = |l: &[String]| {
        if l.is_empty() {
            "-".to_owned()
        } else {
            l.join(", ")
        }
    };
    match &r.audiences {
        Some(a) => println!("audiences:     {}", list(a)),
        None => println!("audiences:     (default: the jws resources configured; any if none are)"),
    }
    println!("scopes:        {}", list(&r.scopes));
    if !r.may_act.is_empty() {
        println!("may act:       {}", list(&r.may_act));
    }
    if !r.introspect.is_empty() {
        println!("introspects:   {}", list(&r.introspect));
    }
    if r.dpop_required {
        println!("dpop:          required (every token bound to the key of a DPoP proof)");
    }
}

fn registration_json(c: &tessera_server::store::ClientRecord) -> serde_json::Value {
    let r = &c.registration;
    serde_json::json!({
        "client_id": c.id, "name": c.name,
        "grants": c.grants, "created_at": c.created_at,
        "audiences": r.audiences, "scopes": r.scopes,
        "may_act": r.may_act, "introspect": r.introspect,
        "legacy": c.legacy,
        "auth": tessera_server::store::client_auth(c),
        "public": c.public,
        "dpop": if r.dpop_required { "required" } else { "optional" },
    })
}

pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TESSERA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: a log file or collector gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

pub fn load_config(path: Option<&PathBuf>, listen: Option<&str>) -> Result<Config, ExitCode> {
    Config::load(path.map(PathBuf::as_path), std::env::vars(), listen).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

pub fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(1)
}

pub async fn serve(config: Config, master_env: Option<String>) -> ExitCode {
    let server = match Server::start(config, master_env.as_deref()).await {
        Ok(s) => s,
        Err(e @ StartError::Config(_)) | Err(e @ StartError::Tls(_)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
        Err(e) => return fail(e),
    };
    shutdown_signal().await;
    tracing::info!("shutting down: finishing in-flight requests");
    server.shutdown().await;
    ExitCode::SUCCESS
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub async fn keys_command(
    config: Config,
    master_env: Option<String>,
    command: KeysCommand,
) -> ExitCode {
    as_cli(keys_command_inner(config, master_env, command)).await
}

/// Runs a command that may change the store with the audit trail naming
/// the command line as the actor.
async fn as_cli(f: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    use tessera_server::audit::{with_context, Actor, Context};
    let ctx = Context {
        actor: Some(Actor::cli()),
        ..Context::default()
    };
    with_context(ctx, f).await
}

/// The store, keyed by the master key (its audit trail needs it).
async fn open(
    config: &Config,
    master_env: Option<&str>,
) -> Result<
    (
        tessera_server::store::SqlStore,
        tessera_server::crypto::MasterKey,
    ),
    ExitCode,
> {
    tessera_server::open_with_master(config, master_env)
        .await
        .map_err(fail)
}

async fn keys_command_inner(
    config: Config,
    master_env: Option<String>,
    command: KeysCommand,
) -> ExitCode {
    let (store, master) = match open(&config, master_env.as_deref()).await {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let rules = Lifecycle::from_config(&config);
    let now = SystemClock.now();
    let code = match command {
        KeysCommand::List { json } => match keys::maintain(&store, &master, &rules, now).await {
            Ok(list) => {
                print_keys(&list, json);
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        KeysCommand::Rotate => match keys::rotate_now(&store, &master, &rules, now).await {
            Ok(at) => {
                if at <= now {
                    println!("rotated: the next key signs from now on");
                } else {
                    println!(
                        "the next key signs in {} s, once verifiers' JWKS caches (max-age {} s) hold it",
                        at - now,
                        rules.jwks_max_age
                    );
                }
                match store.signing_keys().await {
                    Ok(list) => print_keys(&list, false),
                    Err(e) => return fail(e),
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        KeysCommand::Compromised { kid, yes, json } => {
            if !yes {
                eprintln!(
                    "error: marking {kid} compromised cannot be undone: a fresh key signs at once \
                     and every token it signed stops working. Run again with --yes."
                );
                store.close().await;
                return ExitCode::from(2);
            }
            match keys::compromise(&store, &master, &rules, &kid, now).await {
                Ok(mut done) => {
                    if store.backend() == tessera_server::store::Backend::Sqlite {
                        // A service running on this SQLite file hears of it
                        // at its next reload, and may publish the kid until
                        // then: a verifier may cache it that much later.
                        done.verifiers_may_accept_until = done
                            .verifiers_may_accept_until
                            .saturating_add(rules.reload_every);
                    }
                    if json {
                        println!(
                            "{}",
                            serde_json::json!({
                                "kid": done.kid,
                                "new_kid": done.new_kid,
                                "verifiers_may_accept_until": done.verifiers_may_accept_until,
                            })
                        );
                    } else {
                        println!(
                            "{} is compromised: out of the JWKS, its private part destroyed, its \
                             tokens inactive at introspection.\n{} signs from now on.\n\
                             Verifiers that cached the JWKS may accept {} for {} s more (until \
                             {}); running nodes drop it at once on PostgreSQL, within \
                             signing.reload_every otherwise.",
                            done.kid,
                            done.new_kid,
                            done.kid,
                            done.verifiers_may_accept_until - now,
                            utc(done.verifiers_may_accept_until)
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e @ keys::KeyError::UnknownKey(_))
                | Err(e @ keys::KeyError::AlreadyCompromised(_)) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
                Err(e) => fail(e),
            }
        }
    };
    store.close().await;
    code
}

pub async fn clients_command(
    config: Config,
    master_env: Option<String>,
    command: ClientsCommand,
) -> ExitCode {
    as_cli(clients_command_inner(config, master_env, command)).await
}

async fn clients_command_inner(
    config: Config,
    master_env: Option<String>,
    command: ClientsCommand,
) -> ExitCode {
    use tessera_server::clients;
    let (store, _) = match open(&config, master_env.as_deref()).await {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let code = match command {
        ClientsCommand::Create {
            name,
            grant,
            jwks,
            public,
            registration: args,
            json,
        } => {
            let jwks = match jwks.map(std::fs::read_to_string).transpose() {
                Ok(j) => j,
                Err(e) => {
                    eprintln!("error: --jwks: {e}");
                    return ExitCode::from(2);
                }
            };
            let wanted = registration(args, Registration::default());
            let created = if public {
                clients::create_public(&store, &name, &grant, wanted, SystemClock.now()).await
            } else {
                clients::create_with(
                    &store,
                    &name,
                    &grant,
                    jwks.as_deref(),
                    wanted,
                    SystemClock.now(),
                )
                .await
            };
            match created {
                Ok(new) => {
                    if json && new.secret.is_empty() {
                        println!("{}", serde_json::json!({ "client_id": new.record.id }));
                    } else if json {
                        println!(
                            "{}",
                            serde_json::json!({
                                "client_id": new.record.id,
                                "client_secret": new.secret.as_str(),
                            })
                        );
                    } else if new.record.public {
                        println!("client_id:     {}", new.record.id);
                        println!("grants:        {}", new.record.grants.join(", "));
                        print_registration(&new.record.registration);
                        println!(
                            "auth:          none (a public client: it refreshes the sessions it \
                             holds, each time with a DPoP proof by the session's key)"
                        );
                    } else if new.secret.is_empty() {
                        println!("client_id:     {}", new.record.id);
                        println!("grants:        {}", new.record.grants.join(", "));
                        print_registration(&new.record.registration);
                        println!(
                            "auth:          private_key_jwt (RFC 7523) with the registered JWKS"
                        );
                    } else {
                        println!("client_id:     {}", new.record.id);
                        println!("client_secret: {}", new.secret.as_str());
                        println!("grants:        {}", new.record.grants.join(", "));
                        print_registration(&new.record.registration);
                        eprintln!("The secret is shown this once; tessera keeps only its hash.");
                    }
                    ExitCode::SUCCESS
                }
                Err(clients::ClientError::Invalid(msg)) => {
                    eprintln!("error: {msg}");
                    ExitCode::from(2)
                }
                Err(e) => fail(e),
            }
        }
        ClientsCommand::List { json } => match store.clients().await {
            Ok(list) => {
                if json {
                    let rows: Vec<serde_json::Value> = list.iter().map(registration_json).collect();
                    println!("{}", serde_json::Value::Array(rows));
                } else {
                    println!(
                        "{:<28} {:<24} {:<40} {:<17} {:<16} {:<30} scopes",
                        "client_id", "name", "grants", "created (UTC)", "auth", "audiences"
                    );
                    for c in &list {
                        let auth = if c.jwks.is_some() {
                            "private_key_jwt"
                        } else {
                            "secret"
                        };
                        let audiences = match (&c.registration.audiences, c.legacy) {
                            (None, _) => "(default)".to_owned(),
                            (Some(a), true) => format!("(default) + {}", a.join(",")),
                            (Some(a), false) => a.join(","),
                        };
                        println!(
                            "{:<28} {:<24} {:<40} {:<17} {:<16} {:<30} {}",
                            c.id,
                            c.name,
                            c.grants.join(","),
                            utc(c.created_at),
                            auth,
                            audiences,
                            c.registration.scopes.join(" ")
                        );
                    }
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        ClientsCommand::Update {
            id,
            registration: args,
            default_audiences,
        } => {
            let current = match store.client(&id).await {
                Ok(Some(c)) => c,
                Ok(None) => {
                    eprintln!("error: no client {id}");
                    store.close().await;
                    return ExitCode::from(1);
                }
                Err(e) => return fail(e),
            };
            let mut wanted = registration(args, current.registration.clone());
            if default_audiences {
                wanted.audiences = None;
            }
            let checked = match clients::check_registration(&store, wanted)
                .await
                .and_then(|r| {
                    if current.public {
                        clients::check_public(&r)?;
                    }
                    Ok(r)
                }) {
                Ok(r) => r,
                Err(clients::ClientError::Invalid(msg)) => {
                    eprintln!("error: {msg}");
                    store.close().await;
                    return ExitCode::from(2);
                }
                Err(e) => return fail(e),
            };
            match store.update_registration(&id, &checked).await {
                Ok(true) => {
                    println!("client_id:     {id}");
                    print_registration(&checked);
                    let kept = config.clients.cache_for.as_secs();
                    if kept > 0 {
                        eprintln!(
                            "note: a running tessera serve applies the change within {kept} s \
                             (clients.cache_for)"
                        );
                    }
                    ExitCode::SUCCESS
                }
                Ok(false) => {
                    eprintln!("error: no client {id}");
                    ExitCode::from(1)
                }
                Err(e) => fail(e),
            }
        }
        ClientsCommand::Delete { id } => match store.delete_client(&id).await {
            Ok(true) => {
                println!("deleted {id}");
                let kept = config.clients.cache_for.as_secs();
                if kept > 0 {
                    eprintln!(
                        "note: a running tessera serve may still accept it for up to {kept} s \
                         (clients.cache_for)"
                    );
                }
                ExitCode::SUCCESS
            }
            Ok(false) => {
                eprintln!("error: no client {id}");
                ExitCode::from(1)
            }
            Err(e) => fail(e),
        },
    };
    store.close().await;
    code
}

/// Unix seconds as `YYYY-MM-DD HH:MM` UTC (proleptic Gregorian).
/// `tessera admins create|list|delete`: the admin API's operators.
pub async fn admins_command(
    config: Config,
    master_env: Option<String>,
    command: AdminsCommand,
) -> ExitCode {
    as_cli(admins_command_inner(config, master_env, command)).await
}

async fn admins_command_inner(
    config: Config,
    master_env: Option<String>,
    command: AdminsCommand,
) -> ExitCode {
    use tessera_server::admins;
    let (store, _) = match open(&config, master_env.as_deref()).await {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let code = match command {
        AdminsCommand::Create { name, scopes, json } => {
            match admins::create(&store, &name, &scopes, SystemClock.now()).await {
                Ok(new) => {
                    if json {
                        println!(
                            "{}",
                            serde_json::json!({
                                "admin_id": new.record.id,
                                "token": new.token.as_str(),
                            })
                        );
                    } else {
                        println!("admin_id: {}", new.record.id);
                        println!("token:    {}", new.token.as_str());
                        println!("scopes:   {}", new.record.scopes.join(","));
                        eprintln!("The token is shown this once; tessera keeps only its hash.");
                    }
                    ExitCode::SUCCESS
                }
                Err(admins::AdminError::Invalid(msg)) => {
                    eprintln!("error: {msg}");
                    ExitCode::from(2)
                }
                Err(e) => fail(e),
            }
        }
        AdminsCommand::List { json } => match store.admins().await {
            Ok(list) => {
                if json {
                    let rows: Vec<serde_json::Value> = list
                        .iter()
                        .map(|a| {
                            serde_json::json!({
                                "admin_id": a.id,
                                "name": a.name,
                                "scopes": a.scopes,
                                "created_at": a.created_at,
                            })
                        })
                        .collect();
                    println!("{}", serde_json::Value::Array(rows));
                } else {
                    println!(
                        "{:<28} {:<24} {:<17} scopes",
                        "admin_id", "name", "created (UTC)"
                    );
                    for a in &list {
                        println!(
                            "{:<28} {:<24} {:<17} {}",
                            a.id,
                            a.name,
                            utc(a.created_at),
                            a.scopes.join(",")
                        );
                    }
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        AdminsCommand::Delete { id } => match store.delete_admin(&id).await {
            Ok(true) => {
                println!("deleted {id}");
                ExitCode::SUCCESS
            }
            Ok(false) => {
                eprintln!("error: no admin {id}");
                ExitCode::from(1)
            }
            Err(e) => fail(e),
        },
    };
    store.close().await;
    code
}

/// `tessera audit hash|verify|export`, as the actor `cli`.
pub async fn audit_command(
    config: Config,
    master_env: Option<String>,
    command: AuditCommand,
) -> ExitCode {
    use tessera_server::audit::{self, Actor, AuditKeys, Context};
    let ctx = Context {
        actor: Some(Actor::cli()),
        ..Context::default()
    };
    audit::with_context(ctx, async move {
        // The master key first: `hash` needs nothing else.
        if let Err(e) = keys::prepare_data_dir(&config.data_dir) {
            return fail(e);
        }
        let master = match tessera_server::existing_master_key(&config, master_env.as_deref()) {
            Ok(m) => m,
            Err(e) => return fail(e),
        };
        let keys = match AuditKeys::from_master(&master) {
            Ok(k) => k,
            Err(e) => return fail(e),
        };
        if let AuditCommand::Hash { value } = command {
            let value = match value {
                Some(v) => zeroize::Zeroizing::new(v),
                None => match std::io::read_to_string(std::io::stdin()) {
                    Ok(mut text) => {
                        if text.ends_with('\n') {
                            text.pop();
                            if text.ends_with('\r') {
                                text.pop();
                            }
                        }
                        zeroize::Zeroizing::new(text)
                    }
                    Err(e) => {
                        eprintln!("error: standard input: {e}");
                        return ExitCode::from(2);
                    }
                },
            };
            println!("{}", audit::secret_ref_of(&keys, value.as_bytes()));
            return ExitCode::SUCCESS;
        }
        let store = match tessera_server::open_store(&config, &master).await {
            Ok(s) => s,
            Err(e) => return fail(e),
        };
        let code = match command {
            AuditCommand::Hash { .. } => ExitCode::SUCCESS,
            AuditCommand::Verify => match audit::verify_store(&store, store.audit_keys()).await {
                Ok(v) => {
                    println!(
                        "audit trail intact: {} events, verified through seq {}",
                        v.events, v.through
                    );
                    ExitCode::SUCCESS
                }
                Err(audit::VerifyError::Broken(b)) => {
                    println!("{b}");
                    ExitCode::from(1)
                }
                Err(e) => fail(e),
            },
            AuditCommand::Export { after } => export_audit(&store, after).await,
        };
        store.close().await;
        code
    })
    .await
}

/// The events after `after`, one JSON object a line, read a page at a time.
async fn export_audit(store: &tessera_server::store::SqlStore, mut after: i64) -> ExitCode {
    use std::io::Write;
    loop {
        let page = match store.audit_events(after, tessera_server::audit::PAGE).await {
            Ok(p) => p,
            Err(e) => return fail(e),
        };
        let Some(last) = page.last() else { break };
        after = last.seq;
        let mut lines = String::new();
        for event in &page {
            lines.push_str(&event.to_json().to_string());
            lines.push('\n');
        }
        let mut out = std::io::stdout().lock();
        match out.write_all(lines.as_bytes()).and_then(|()| out.flush()) {
            Ok(()) => {}
            // A reader that stopped early (`| head`) is not a failure.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return ExitCode::SUCCESS,
            Err(e) => return fail(e),
        }
    }
    ExitCode::SUCCESS
}

fn utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

fn print_keys(list: &[tessera_server::store::KeyRecord], json: bool) {
    if json {
        let rows: Vec<serde_json::Value> = list
            .iter()
            .map(|k| {
                serde_json::json!({
                    "kid": k.kid, "alg": k.alg, "state": k.state.as_str(),
                    "created_at": k.created_at, "activates_at": k.activates_at,
                    "retires_at": k.retires_at,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(rows));
        return;
    }
    println!(
        "{:<44} {:<6} {:<11} {:<17} {:<17} {:<17}",
        "kid", "alg", "state", "created (UTC)", "signs from", "leaves JWKS"
    );
    for k in list {
        println!(
            "{:<44} {:<6} {:<11} {:<17} {:<17} {:<17}",
            k.kid,
            k.alg,
            k.state.as_str(),
            utc(k.created_at),
            utc(k.activates_at),
            k.retires_at.map_or_else(|| "-".to_owned(), utc)
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00");
        assert_eq!(super::utc(951_782_400), "2000-02-29 00:00");
        assert_eq!(super::utc(1_795_460_478), "2026-11-23 19:01");
    }
}
