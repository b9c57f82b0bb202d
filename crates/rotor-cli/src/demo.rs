//! `rotor demo`: real rotations through the real state machine and handlers, on the local store,
//! against loopback stand-ins for the vendors and for an application.

use crate::exit;
use crate::store;
use crate::workflow::{execute, execute_observed, Ending, Run};
use anyhow::{anyhow, Result};
use clap::Args;
use rotor_core::events::{Action, ExecutionInput};
use rotor_core::iam::KeyValue;
use rotor_core::policy::{
    TAG_APP_HEALTH_URL, TAG_GRACE, TAG_IAM_PROBE_ACTION, TAG_IAM_USER, TAG_KIND, TAG_PROBE,
    TAG_PROBE_URL, TAG_WAIT_CONSUMERS, TAG_WAIT_PROPAGATION,
};
use rotor_core::ports::{CallerIdentity, Iam, SecretStore};
use rotor_core::secret::{SecretValue, Version};
use rotor_local_store::LocalStore;
use rotor_standins::{AppStandIn, VendorStandIn};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args)]
pub struct DemoArgs {
    /// Print each state transition as it happens (default: one line per execution with the
    /// states it went through).
    #[arg(long)]
    verbose: bool,
    /// Print only a JSON summary: `{"ok": bool, "scenarios": [{"scenario", "secret", "expected", "result", "ok", "execution_id", "error"}]}`.
    #[arg(long)]
    json: bool,
}

/// The states an execution went through, in order: what an auditor sees in the console graph.
fn path(f: &crate::workflow::Finished) -> String {
    f.outcome
        .events
        .iter()
        .filter_map(|e| {
            e.get("stateEnteredEventDetails")
                .and_then(|d| d["name"].as_str())
        })
        .collect::<Vec<_>>()
        .join(" > ")
}

pub const PREFIX: &str = "richesreach/development/";

/// The seed template's secrets and the vendor each one belongs to.
pub const SECRETS: &[(&str, &str)] = &[
    ("openai_api_key", "openai"),
    ("polygon_api_key", "polygon"),
    ("finnhub_api_key", "finnhub"),
    ("alpha_vantage_key", "alpha-vantage"),
    ("alchemy_key", "alchemy"),
    ("walletconnect_id", "walletconnect"),
    ("newsapi_key", "newsapi"),
];

/// The seed's IAM access key secret and the (local store) IAM user it belongs to.
pub const IAM_SECRET: &str = "aws_access_key";
pub const IAM_USER: &str = "richesreach-app";
/// The local store simulates IAM's eventual consistency: a new key fails this many
/// authentications before it works (the state machine's retries absorb it).
const IAM_PROPAGATION_FAILURES: u32 = 2;

/// The secret whose consumer is the application stand-in.
const APP_SECRET: &str = "openai_api_key";

struct Row {
    execution_id: String,
    scenario: &'static str,
    secret: String,
    expected: Ending,
    got: Ending,
    detail: String,
}

/// The consumer scenarios: (scenario, secret, vendor, service of cluster
/// [`CONSUMER_CLUSTER`], whether its new tasks crash on a new key).
const CONSUMER_SCENARIOS: [(&str, &str, &str, &str, bool); 2] = [
    (
        "consumer redeployed",
        "newsapi_key",
        "newsapi",
        "news-worker",
        false,
    ),
    (
        "consumer fails on new key",
        "alchemy_key",
        "alchemy",
        "chain-worker",
        true,
    ),
];
const CONSUMER_CLUSTER: &str = "richesreach";

/// Makes `service` the consumer of `secret`: an ECS-like service of the local store (running on
/// the secret's current value), named in the secret's rotor:consumers, whose task is an app
/// stand-in (holding the key its deployment started on) that the application probe asks.
async fn consumer_task(
    store: &LocalStore,
    vendor: &VendorStandIn,
    secret: &str,
    preset: &str,
    service: &str,
    crash_on_new_value: bool,
) -> Result<AppStandIn> {
    let e = |e: rotor_core::RotorError| anyhow!(e);
    store.delete_service(CONSUMER_CLUSTER, service).map_err(e)?;
    store
        .create_service(&rotor_local_store::ServiceSpec {
            cluster: CONSUMER_CLUSTER.into(),
            service: service.into(),
            desired_count: 2,
            secrets: vec![secret.into()],
            crash_on_new_value,
        })
        .map_err(e)?;
    let serving = store.clone();
    let (secret_id, service_name) = (secret.to_string(), service.to_string());
    let key = rotor_standins::task_key_from(
        Arc::new(store.clone()),
        secret,
        Arc::new(move || {
            serving
                .serving_version(CONSUMER_CLUSTER, &service_name, &secret_id)
                .ok()
                .flatten()
        }),
    );
    let task = AppStandIn::for_vendor(key, vendor, preset).await;
    store
        .tag_secret(
            secret,
            &BTreeMap::from([
                (
                    rotor_core::consumers::TAG_CONSUMERS.to_string(),
                    format!("ecs:{CONSUMER_CLUSTER}/{service}"),
                ),
                (
                    rotor_core::consumers::TAG_CONSUMER_POLL.to_string(),
                    "15".to_string(),
                ),
                (TAG_APP_HEALTH_URL.to_string(), task.health_url()),
            ]),
        )
        .map_err(e)?;
    Ok(task)
}

async fn seed(store: &LocalStore, vendor: &VendorStandIn, app: &AppStandIn) -> Result<()> {
    for (name, preset) in SECRETS {
        let id = format!("{PREFIX}{name}");
        // A re-run starts from fresh keys: the previous run's stand-in (and its keys) are gone.
        if store.describe(&id).await.is_ok() {
            store.delete_secret(&id).map_err(|e| anyhow!(e))?;
        }
        let mut tags = BTreeMap::from([
            (TAG_KIND.to_string(), "vendor-api-key".to_string()),
            (TAG_PROBE.to_string(), preset.to_string()),
            (TAG_PROBE_URL.to_string(), vendor.probe_url(preset)),
            (TAG_WAIT_PROPAGATION.to_string(), "5".to_string()),
            (TAG_WAIT_CONSUMERS.to_string(), "30".to_string()),
        ]);
        if *name == APP_SECRET {
            tags.insert(TAG_APP_HEALTH_URL.to_string(), app.health_url());
        }
        let value = SecretValue::new(vendor.issue_key(preset));
        store
            .create_secret(&id, &value, tags, Some(format!("rotor demo: {preset} key")))
            .map_err(|e| anyhow!(e))?;
    }
    seed_iam(store).await
}

/// The IAM user (in the local store's IAM) with one key, created by the store, and the secret
/// holding it. A re-run starts from a fresh key.
async fn seed_iam(store: &LocalStore) -> Result<()> {
    let e = |e: rotor_core::RotorError| anyhow!(e);
    let id = format!("{PREFIX}{IAM_SECRET}");
    if store.describe(&id).await.is_ok() {
        store.delete_secret(&id).map_err(e)?;
    }
    store.create_user(IAM_USER).map_err(e)?;
    for k in Iam::list_access_keys(store, IAM_USER).await.map_err(e)? {
        Iam::delete_access_key(store, IAM_USER, &k.access_key_id)
            .await
            .map_err(e)?;
    }
    let key = Iam::create_access_key(store, IAM_USER).await.map_err(e)?;
    let value = KeyValue {
        access_key_id: key.access_key_id,
        secret_access_key: key.secret_access_key,
        user_name: Some(IAM_USER.into()),
    }
    .to_value();
    let tags = BTreeMap::from([
        (TAG_KIND.to_string(), "iam-access-key".to_string()),
        (TAG_IAM_USER.to_string(), IAM_USER.to_string()),
        (TAG_IAM_PROBE_ACTION.to_string(), "iam:GetUser".to_string()),
        (TAG_WAIT_PROPAGATION.to_string(), "10".to_string()),
        (TAG_WAIT_CONSUMERS.to_string(), "60".to_string()),
        (TAG_GRACE.to_string(), "3600".to_string()),
    ]);
    store
        .create_secret(
            &id,
            &value,
            tags,
            Some(format!("rotor demo: AWS access key of IAM user {IAM_USER}")),
        )
        .map_err(e)?;
    Ok(())
}

/// The IAM secret's AWSCURRENT: (version id, access key id), and whether that key is the
/// user's only key, Active, and authenticates with the local STS.
async fn iam_state(store: &LocalStore) -> Result<(String, String, bool)> {
    let e = |e: rotor_core::RotorError| anyhow!(e);
    let id = format!("{PREFIX}{IAM_SECRET}");
    let (version, value) = current(store, &id).await?;
    let key = KeyValue::parse(&id, &version, &value).map_err(e)?;
    let keys = Iam::list_access_keys(store, IAM_USER).await.map_err(e)?;
    let only =
        keys.len() == 1 && keys[0].access_key_id == key.access_key_id && keys[0].status == "Active";
    let works = CallerIdentity::caller_identity(store, &key.access_key_id, &key.secret_access_key)
        .await
        .is_ok_and(|who| who.user_name.as_deref() == Some(IAM_USER));
    Ok((version, key.access_key_id, only && works))
}

async fn candidate(store: &LocalStore, secret: &str, value: &str) -> Result<String> {
    let (text, _) = crate::workflow::seal_new_candidate(
        store,
        secret,
        rotor_core::candidate::IMMEDIATE_VALIDITY,
        &SecretValue::new(value),
    )
    .await?;
    Ok(text)
}

fn input(
    secret: &str,
    action: Action,
    candidate_ciphertext: Option<String>,
    reason: &str,
) -> ExecutionInput {
    ExecutionInput {
        action,
        secret_id: secret.to_string(),
        candidate_ciphertext,
        requested_by: Some("rotor-demo".into()),
        reason: Some(reason.into()),
        target_version_id: None,
        force: false,
        recovery: None,
    }
}

async fn current(store: &LocalStore, secret: &str) -> Result<(String, SecretValue)> {
    store
        .get_value(secret, &Version::current())
        .await
        .map_err(|e| anyhow!(e))
}

pub fn run(store_dir: Option<PathBuf>, args: DemoArgs) -> Result<u8> {
    let store = store::open_or_create(store_dir)?;
    let rt = store::runtime()?;
    rt.block_on(async {
        let vendor = VendorStandIn::start().await;
        let current_key = rotor_standins::current_key_from(
            Arc::new(store.clone()),
            &format!("{PREFIX}{APP_SECRET}"),
        );
        let app = AppStandIn::for_vendor(current_key, &vendor, "openai").await;
        let say = |line: String| {
            if !args.json {
                println!("{line}");
            }
        };
        say(format!(
            "vendor stand-in {}  app stand-in {}",
            vendor.base_url(),
            app.health_url()
        ));
        seed(&store, &vendor, &app).await?;
        say(format!(
            "seeded {} secrets under {PREFIX} in {}",
            SECRETS.len() + 1,
            store.dir().display()
        ));
        let live = args.verbose && !args.json;
        let quiet = args.json || args.verbose;
        // One execution: encrypt the candidate, run the workflow, show its path.
        let run = |id: String, action: Action, value: Option<String>, reason: &'static str| {
            let store = store.clone();
            async move {
                let ct = match value {
                    Some(v) => Some(candidate(&store, &id, &v).await?),
                    None => None,
                };
                let f = execute(
                    &store,
                    store::services(&store)?,
                    input(&id, action, ct, reason),
                    Run::default(),
                    live,
                )
                .await?;
                if !quiet {
                    println!("  {id}: {}", path(&f));
                }
                anyhow::Ok(f)
            }
        };
        let row = |f: &crate::workflow::Finished,
                   scenario,
                   secret: String,
                   expected,
                   held: bool,
                   detail: String| Row {
            execution_id: f.execution_id.clone(),
            scenario,
            secret,
            expected,
            got: if held { f.ending } else { Ending::Failed },
            detail,
        };
        let mut rows = Vec::new();

        // 1. Every secret rotated to a key the vendor issued.
        for (name, preset) in SECRETS {
            let id = format!("{PREFIX}{name}");
            let (before, _) = current(&store, &id).await?;
            let new_key = vendor.issue_key(preset);
            let f = run(
                id.clone(),
                Action::Rotate,
                Some(new_key.clone()),
                "demo: scheduled rotation",
            )
            .await?;
            let (after, value) = current(&store, &id).await?;
            let detail = f
                .error
                .clone()
                .unwrap_or_else(|| format!("AWSCURRENT {before} -> {after}"));
            let works = value.expose() == new_key && after != before;
            rows.push(row(&f, "rotate", id, Ending::Rotated, works, detail));
        }

        // 2. A candidate the vendor never issued: rejected before promote, secret unchanged.
        let id = format!("{PREFIX}polygon_api_key");
        let (before, _) = current(&store, &id).await?;
        let f = run(
            id.clone(),
            Action::Rotate,
            Some("not-a-key-the-vendor-issued".into()),
            "demo: bad candidate",
        )
        .await?;
        let (after, _) = current(&store, &id).await?;
        let detail = format!(
            "{}; AWSCURRENT still {after}",
            f.error.clone().unwrap_or_default()
        );
        rows.push(row(
            &f,
            "bad candidate",
            id,
            Ending::Abandoned,
            after == before,
            detail,
        ));

        // 3. The application breaks after promote: reverted to the old version.
        let id = format!("{PREFIX}{APP_SECRET}");
        let (before, _) = current(&store, &id).await?;
        app.set_broken(true);
        let f = run(
            id.clone(),
            Action::Rotate,
            Some(vendor.issue_key("openai")),
            "demo: app fails after promote",
        )
        .await;
        app.set_broken(false);
        let f = f?;
        let (after, _) = current(&store, &id).await?;
        let detail = format!(
            "{}; AWSCURRENT back on {after}",
            f.error.clone().unwrap_or_default()
        );
        rows.push(row(
            &f,
            "app fails after promote",
            id,
            Ending::RolledBack,
            after == before,
            detail,
        ));

        // 4. An operator rolls a rotated secret back to AWSPREVIOUS (its seeded key).
        let id = format!("{PREFIX}finnhub_api_key");
        let info = store.describe(&id).await.map_err(|e| anyhow!(e))?;
        let previous = info
            .version_with(rotor_core::secret::AWSPREVIOUS)
            .map(|v| v.version_id.clone());
        let f = run(id.clone(), Action::Rollback, None, "demo: manual rollback").await?;
        let (after, _) = current(&store, &id).await?;
        let detail = format!("AWSCURRENT now {after}");
        rows.push(row(
            &f,
            "manual rollback",
            id,
            Ending::ManualRollback,
            previous.as_deref() == Some(after.as_str()),
            detail,
        ));

        // 5. The IAM access key: a new key created, proven with the (local) STS after IAM's
        //    simulated propagation delay, promoted; the old key deactivated, and deleted after
        //    the grace period.
        store.set_key_propagation(IAM_PROPAGATION_FAILURES);
        let id = format!("{PREFIX}{IAM_SECRET}");
        let (before, old_key, _) = iam_state(&store).await?;
        let f = run(id.clone(), Action::Rotate, None, "demo: IAM key rotation").await?;
        let (after, new_key, healthy) = iam_state(&store).await?;
        let detail = f.error.clone().unwrap_or_else(|| {
            format!("access key {old_key} -> {new_key} (old key deleted); AWSCURRENT {before} -> {after}")
        });
        rows.push(row(
            &f,
            "rotate IAM key",
            id.clone(),
            Ending::Rotated,
            healthy && after != before && new_key != old_key,
            detail,
        ));
        // 6. A consumer still uses the old key during the grace period: the delete step sees
        //    the use (last used after deactivation) and the rotation is reverted. The virtual
        //    clock makes the Wait instant, so the stand-in consumer acts when the history shows
        //    WaitGracePeriod entered: after DeactivateOldKey, before DeleteOldKey.
        let (before, old_key, _) = iam_state(&store).await?;
        let consumer = store.clone();
        let used_key = old_key.clone();
        let consumer_ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ran = consumer_ran.clone();
        let observer: rotor_asl::executor::Observer = Arc::new(move |e: &serde_json::Value| {
            if e["type"] == "WaitStateEntered"
                && e["stateEnteredEventDetails"]["name"] == "WaitGracePeriod"
            {
                // Strictly after the deactivation (times are kept to the millisecond).
                std::thread::sleep(std::time::Duration::from_millis(3));
                if consumer.record_key_use(&used_key).is_ok() {
                    ran.store(true, std::sync::atomic::Ordering::SeqCst);
                }
            }
        });
        let f = execute_observed(
            &store,
            store::services(&store)?,
            input(&id, Action::Rotate, None, "demo: old key still used during grace"),
            Run::default(),
            live,
            Some(observer),
        )
        .await?;
        if !quiet {
            println!("  {id}: {}", path(&f));
        }
        let (after, key_now, healthy) = iam_state(&store).await?;
        let detail = format!(
            "{}; AWSCURRENT back on {after} (access key {key_now} Active, new key deleted)",
            f.error.clone().unwrap_or_default()
        );
        rows.push(row(
            &f,
            "old IAM key used in grace",
            id,
            Ending::RolledBack,
            consumer_ran.load(std::sync::atomic::Ordering::SeqCst)
                && healthy
                && after == before
                && key_now == old_key,
            detail,
        ));
        // 7. A consumer (an ECS-like service whose tasks read the key when they start, named in
        //    rotor:consumers) is redeployed on the new key after promotion, and the application
        //    probe asks its task, which holds the key its deployment started on.
        for (scenario, name, preset, service, crash) in CONSUMER_SCENARIOS {
            let id = format!("{PREFIX}{name}");
            let task = consumer_task(&store, &vendor, &id, preset, service, crash).await?;
            let (before, _) = current(&store, &id).await?;
            let new_key = vendor.issue_key(preset);
            let f = run(id.clone(), Action::Rotate, Some(new_key), scenario).await?;
            let (after, _) = current(&store, &id).await?;
            let serving = store
                .serving_version(CONSUMER_CLUSTER, service, &id)
                .map_err(|e| anyhow!(e))?;
            let (expected, held, detail) = if crash {
                // 8. Its new tasks crash on the new key: the rotation reverts AWSCURRENT and
                //    redeploys the service on the old key.
                (
                    Ending::RolledBack,
                    after == before && serving.as_deref() == Some(before.as_str()),
                    format!(
                        "{}; AWSCURRENT back on {after}, ecs:{CONSUMER_CLUSTER}/{service} redeployed on it",
                        f.error.clone().unwrap_or_default()
                    ),
                )
            } else {
                (
                    Ending::Rotated,
                    after != before && serving.as_deref() == Some(after.as_str()),
                    f.error.clone().unwrap_or_else(|| {
                        format!("AWSCURRENT {before} -> {after}; ecs:{CONSUMER_CLUSTER}/{service} runs on it")
                    }),
                )
            };
            task.shutdown().await;
            rows.push(row(&f, scenario, id, expected, held, detail));
        }
        let all_ok = rows.iter().all(|r| r.got == r.expected);
        if args.json {
            let scenarios: Vec<_> = rows
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "scenario": r.scenario, "secret": r.secret, "expected": r.expected.as_str(),
                        "result": r.got.as_str(), "ok": r.got == r.expected,
                        "execution_id": r.execution_id, "detail": r.detail,
                    })
                })
                .collect();
            println!(
                "{}",
                serde_json::json!({"ok": all_ok, "scenarios": scenarios})
            );
            return Ok(if all_ok { exit::OK } else { exit::FAILED });
        }
        println!();
        println!(
            "{:<27} {:<46} {:<28} {:<4} detail",
            "scenario", "secret", "result", "ok"
        );
        for r in &rows {
            let ok = r.got == r.expected;
            println!(
                "{:<27} {:<46} {:<28} {:<4} {}",
                r.scenario,
                r.secret,
                r.got.as_str(),
                if ok { "yes" } else { "NO" },
                r.detail
            );
        }
        println!();
        println!(
            "{} of {} scenarios ended as expected",
            rows.iter().filter(|r| r.got == r.expected).count(),
            rows.len()
        );
        println!(
            "see `rotor history`, `rotor audit` and `rotor secret show <id>` (store: {})",
            store.dir().display()
        );
        Ok(if all_ok { exit::OK } else { exit::FAILED })
    })
}
