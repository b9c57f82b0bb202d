//! The Terraform under `infrastructure/`: formatted, valid, least-privilege (`terraform test`
//! with a mocked provider), applied to moto, re-planned with no changes, read back through the
//! Step Functions API, destroyed, and clean under checkov.
//!
//! Needs what `scripts/test` sets up and exports: `ROTOR_TERRAFORM` (the binary),
//! `TF_CLI_CONFIG_FILE` (a CLI config whose filesystem_mirror holds hashicorp/aws, so nothing is
//! downloaded) and `ROTOR_MOTO_ENDPOINT`. A missing one is a failure, never a skip.
//!
//! Terraform never runs in the source tree (only `fmt -check`, which reads): every `init` is in
//! a temporary copy of `infrastructure/` and `statemachine/`, so no `.terraform/`, lock file or
//! state appears in the repository. The functions' zips are `target/lambda-zips/` when
//! scripts/package built all six (the moto apply uploads them), else tiny placeholder zips made
//! here (moto never runs a function). checkov runs from its own venv, `target/checkov-venv`,
//! built from `requirements-checkov.txt` (its pins conflict with moto's).

mod parity;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rotor_tests::terraform::{
    placeholder_zips, repo_root, required_env, terraform_bin, work_copy, zips_for_moto, FUNCTIONS,
};
use serde_json::Value;

/// The checkov skips the Terraform may carry (each inline, with its reason): a new one must be
/// argued here too.
const ALLOWED_SKIPS: [&str; 10] = [
    "CKV_AWS_116", // Lambda DLQ: only invoked synchronously by the state machine
    "CKV_AWS_117", // Lambda in a VPC: opt-in (subnet_ids); by default nothing is in a VPC
    "CKV_AWS_18",  // the trail's bucket logging its own access: it is the audit log
    "CKV_AWS_144", // the trail's bucket replicated: the account's backup policy
    "CKV2_AWS_62", // the trail's bucket notifying per object: its digests prove it whole
    "CKV_AWS_252", // the trail notifying SNS per log file: auditors read the trail
    "CKV2_AWS_10", // the trail copied to CloudWatch Logs: another role ci-deploy could change
    "CKV_AWS_272", // Lambda code signing: zips from scripts/package, tracked by hash
    "CKV_AWS_285", // SFN execution data in logs: deliberately off (payloads stay in history)
    "CKV2_AWS_57", // Secrets Manager RotateSecret: rotor's state machine rotates instead
];

/// What one command did.
struct Ran {
    ok: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Ran {
    fn show(&self, what: &str) -> String {
        format!(
            "{what}: exit {:?} after {:.1} s\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code,
            self.elapsed.as_secs_f64(),
            tail(&self.stdout, 12_000),
            tail(&self.stderr, 8_000)
        )
    }
}

fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// Runs `cmd` to its end or kills it after `limit` (a hung call to an API moto lacks must fail
/// the test, not hang it); output goes through files so that no pipe fills up.
fn run(mut cmd: Command, limit: Duration) -> Ran {
    let dir = tempfile::tempdir().expect("temp dir");
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    cmd.stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).expect("stdout file"))
        .stderr(fs::File::create(&err_path).expect("stderr file"));
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = fs::read_to_string(&err_path).unwrap_or_default();
    if status.is_none() {
        stderr.push_str(&format!("\n(killed after {} s)", limit.as_secs()));
    }
    Ran {
        ok: status.is_some_and(|s| s.success()),
        code: status.and_then(|s| s.code()),
        stdout: fs::read_to_string(&out_path).unwrap_or_default(),
        stderr,
        elapsed: started.elapsed(),
    }
}

/// `terraform -chdir=<dir> <args>` with `-no-color`, no prompts.
fn tf(dir: &Path, args: &[&str], limit: Duration) -> Ran {
    tf_logged(dir, args, limit, None)
}

/// [`tf`], with Terraform's debug log (every AWS call the provider makes) appended to `log`.
fn tf_logged(dir: &Path, args: &[&str], limit: Duration, log: Option<&Path>) -> Ran {
    let mut cmd = Command::new(terraform_bin());
    cmd.arg(format!("-chdir={}", dir.display()))
        .args(args)
        .env("TF_IN_AUTOMATION", "1")
        .env("TF_INPUT", "0")
        .env_remove("TF_DATA_DIR")
        .env_remove("TF_WORKSPACE");
    match log {
        Some(path) => cmd.env("TF_LOG", "DEBUG").env("TF_LOG_PATH", path),
        None => cmd.env_remove("TF_LOG").env_remove("TF_LOG_PATH"),
    };
    run(cmd, limit)
}

/// Whether a failed run met a dropped connection to moto (its HTTP server closes idle
/// keep-alive connections; with `max_retries = 1` the provider does not retry), or moto's own
/// crash page (an HTTP 500 with an HTML body: moto 5's Secrets Manager iterates its dict of
/// secrets while a concurrent request of another suite adds one, "RuntimeError: dictionary
/// changed size during iteration" in target/moto.log): worth running the same command again,
/// which converges from the state it left.
fn transient(ran: &Ran) -> bool {
    let text = |m: &str| ran.stderr.contains(m) || ran.stdout.contains(m);
    !ran.ok
        && ([
            "use of closed network connection",
            "connection reset by peer",
            "unexpected EOF",
        ]
        .iter()
        .any(|m| text(m))
            || (text("StatusCode: 500")
                && text("invalid character '<' looking for beginning of value")))
}

/// [`tf_logged`], run again (at most twice) after a transient connection failure to moto.
fn tf_moto(dir: &Path, args: &[&str], limit: Duration, log: Option<&Path>) -> Ran {
    let mut ran = tf_logged(dir, args, limit, log);
    for _ in 0..2 {
        if !transient(&ran) {
            break;
        }
        eprintln!(
            "terraform {}: a connection to moto dropped (or moto crashed on a request), running it again",
            args[0]
        );
        ran = tf_logged(dir, args, limit, log);
    }
    ran
}

fn tf_ok(dir: &Path, args: &[&str], limit: Duration) -> Ran {
    let ran = tf(dir, args, limit);
    assert!(
        ran.ok,
        "{}",
        ran.show(&format!(
            "terraform {} in {}",
            args.join(" "),
            dir.display()
        ))
    );
    ran
}

#[test]
fn terraform_fmt_is_clean() {
    let infra = repo_root().join("infrastructure");
    let ran = tf(
        &infra,
        &["fmt", "-check", "-recursive", "-diff", "-no-color"],
        Duration::from_secs(60),
    );
    assert!(
        ran.ok,
        "{}\nrun `terraform fmt -recursive infrastructure`",
        ran.show("terraform fmt -check")
    );
}

#[test]
fn module_and_every_root_validate() {
    let copy = work_copy();
    let infra = copy.path().join("infrastructure");
    for dir in [
        "modules/rotor",
        "modules/rotor/modules/kms-replica",
        "environments/development",
        "environments/staging",
        "environments/production",
        "tests/moto",
    ] {
        let dir = infra.join(dir);
        tf_ok(
            &dir,
            &["init", "-backend=false", "-input=false", "-no-color"],
            Duration::from_secs(300),
        );
        let ran = tf_ok(&dir, &["validate", "-no-color"], Duration::from_secs(300));
        assert!(
            ran.stdout.contains("The configuration is valid"),
            "{}",
            ran.show("terraform validate")
        );
    }
}

#[test]
fn no_secrets_manager_rotation_resource() {
    // Secrets Manager's RotateSecret would call a function that speaks its four-step
    // protocol; rotor's do not. The state machine rotates instead.
    let mut stack = vec![repo_root().join("infrastructure")];
    let mut files = 0;
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "tf") {
                files += 1;
                let text = fs::read_to_string(&path).expect("read .tf");
                assert!(
                    !text.contains("resource \"aws_secretsmanager_secret_rotation\""),
                    "{} declares aws_secretsmanager_secret_rotation",
                    path.display()
                );
            }
        }
    }
    assert!(files >= 10, "only {files} .tf files under infrastructure/");
}

#[test]
fn module_tests_prove_least_privilege() {
    let copy = work_copy();
    let module = copy.path().join("infrastructure/modules/rotor");
    let zips = copy.path().join("lambda-zips");
    placeholder_zips(&zips);
    tf_ok(
        &module,
        &["init", "-backend=false", "-input=false", "-no-color"],
        Duration::from_secs(300),
    );
    let zip_var = format!("lambda_zip_dir={}", zips.display());
    let ran = tf(
        &module,
        &["test", "-no-color", "-var", &zip_var],
        Duration::from_secs(600),
    );
    assert!(ran.ok, "{}", ran.show("terraform test"));
    assert!(
        ran.stdout.contains("Success!") && ran.stdout.contains(" 0 failed"),
        "{}",
        ran.show("terraform test")
    );
    let runs = ran.stdout.matches("... pass").count();
    assert!(
        runs >= 8,
        "expected every run block to pass, saw {runs}:\n{}",
        ran.stdout
    );
}

/// Every `"FunctionName"` in a definition, wherever it sits.
fn function_names(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "FunctionName" {
                    if let Some(s) = v.as_str() {
                        out.insert(s.to_string());
                    }
                }
                function_names(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| function_names(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn applies_replans_clean_and_destroys_on_moto() {
    let endpoint = required_env(
        "ROTOR_MOTO_ENDPOINT",
        "the moto server this test deploys to",
    );
    let copy = work_copy();
    let root = copy.path().join("infrastructure/tests/moto");
    let (zips, arch) = zips_for_moto(copy.path());
    // Unique per run: names never collide with another deployment on the same moto.
    let environment = format!("m{:x}", std::process::id() % 0xffff_ffff);
    let vars = [
        format!("moto_endpoint={endpoint}"),
        format!("lambda_zip_dir={}", zips.display()),
        format!("lambda_architecture={arch}"),
        format!("environment={environment}"),
    ];
    let with_vars = |args: &[&str]| -> Vec<String> {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        for v in &vars {
            all.push("-var".into());
            all.push(v.clone());
        }
        all
    };
    let limit = Duration::from_secs(600);
    // Terraform's debug logs: the AWS calls of each step, checked against the CI roles.
    let apply_log = copy.path().join("apply.log");
    let replan_log = copy.path().join("replan.log");
    let destroy_log = copy.path().join("destroy.log");

    tf_ok(&root, &["init", "-input=false", "-no-color"], limit);
    let plan_args = with_vars(&["plan", "-input=false", "-no-color", "-out=tfplan"]);
    let plan = tf_moto(
        &root,
        &plan_args.iter().map(String::as_str).collect::<Vec<_>>(),
        limit,
        None,
    );
    assert!(plan.ok, "{}", plan.show("first plan"));
    assert!(
        plan.stdout.contains("Plan: ")
            && plan.stdout.contains(" to add, 0 to change, 0 to destroy"),
        "{}",
        plan.show("first plan")
    );

    let mut apply = tf_logged(
        &root,
        &["apply", "-input=false", "-no-color", "tfplan"],
        limit,
        Some(&apply_log),
    );
    if transient(&apply) {
        // The saved plan is spent: finish with a fresh plan from the state it left.
        eprintln!("terraform apply: a connection to moto dropped, applying again");
        let apply_args = with_vars(&["apply", "-auto-approve", "-input=false", "-no-color"]);
        let again = tf_moto(
            &root,
            &apply_args.iter().map(String::as_str).collect::<Vec<_>>(),
            limit,
            Some(&apply_log),
        );
        apply = Ran {
            elapsed: apply.elapsed + again.elapsed,
            ..again
        };
    }
    let destroy_args = with_vars(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    let destroy = |root: &Path| {
        tf_moto(
            root,
            &destroy_args.iter().map(String::as_str).collect::<Vec<_>>(),
            limit,
            Some(&destroy_log),
        )
    };
    // Managed resources in the state (data sources are not deployed).
    let resources_in_state = |root: &Path| -> usize {
        let listed = tf_ok(root, &["state", "list", "-no-color"], limit);
        listed
            .stdout
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with("data.") && !l.contains(".data."))
            .count()
    };
    if !apply.ok {
        let cleanup = destroy(&root);
        panic!(
            "{}\n(destroy after the failed apply: ok={})",
            apply.show("terraform apply"),
            cleanup.ok
        );
    }
    assert!(
        apply.stdout.contains("Apply complete!"),
        "{}",
        apply.show("terraform apply")
    );
    let added = resources_in_state(&root);
    eprintln!(
        "moto apply: {added} resources in {:.1} s",
        apply.elapsed.as_secs_f64()
    );

    // Everything after the apply may fail; the deployment is destroyed either way.
    let checks = async {
        // The re-plan is the deploy workflow's plan job: signed as ci-plan for the permission
        // check (scripts/permissions.py); the first apply above is the administrator's.
        let replan_args = with_vars(&[
            "plan",
            "-input=false",
            "-no-color",
            "-detailed-exitcode",
            "-var",
            "access_key=rotor-ci-plan",
        ]);
        let replan = tf_moto(
            &root,
            &replan_args.iter().map(String::as_str).collect::<Vec<_>>(),
            limit,
            Some(&replan_log),
        );
        assert_eq!(
            replan.code,
            Some(0),
            "the plan after apply must say no changes (exit 0, 2 = changes):\n{}",
            replan.show("re-plan")
        );
        assert!(
            replan.stdout.contains("No changes."),
            "{}",
            replan.show("re-plan")
        );

        // A routine deploy as ci-deploy (the functions' log level changes): its calls are
        // checked against ci-deploy's policies, call by call.
        let deploy_args = with_vars(&[
            "apply",
            "-auto-approve",
            "-input=false",
            "-no-color",
            "-var",
            "access_key=rotor-ci-deploy",
            "-var",
            "log_level=debug",
        ]);
        let deployed = tf_moto(
            &root,
            &deploy_args.iter().map(String::as_str).collect::<Vec<_>>(),
            limit,
            None,
        );
        assert!(deployed.ok, "{}", deployed.show("apply as ci-deploy"));
        assert!(
            deployed.stdout.contains(" 0 added, 6 changed, 0 destroyed"),
            "a log level change updates the six functions only:\n{}",
            deployed.show("apply as ci-deploy")
        );

        let outputs = tf_ok(&root, &["output", "-json", "-no-color"], limit);
        let outputs: Value = serde_json::from_str(&outputs.stdout).expect("terraform output -json");
        let arn = outputs["state_machine_arn"]["value"]
            .as_str()
            .expect("state_machine_arn output")
            .to_string();
        let expected: BTreeSet<String> = FUNCTIONS
            .iter()
            .map(|f| {
                format!("arn:aws:lambda:us-east-1:123456789012:function:rotor-{environment}-{f}")
            })
            .collect();
        let from_outputs: BTreeSet<String> = outputs["function_arns"]["value"]
            .as_object()
            .expect("function_arns output")
            .values()
            .map(|v| v.as_str().expect("ARN").to_string())
            .collect();
        assert_eq!(from_outputs, expected, "function ARNs on moto");

        // Read the deployed definition back through the Step Functions API.
        let sfn = rotor_tests::moto::sfn_client().await;
        let described = sfn
            .describe_state_machine()
            .state_machine_arn(&arn)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DescribeStateMachine {arn}: {e:?}"));
        assert_eq!(described.name(), format!("rotor-{environment}-rotation"));
        assert_eq!(described.r#type().as_str(), "STANDARD");
        let definition: Value =
            serde_json::from_str(described.definition()).expect("deployed definition is JSON");
        let mut named = BTreeSet::new();
        function_names(&definition, &mut named);
        assert_eq!(
            named, expected,
            "the deployed definition must name exactly the six function ARNs"
        );
        assert!(
            !described.definition().contains("${"),
            "a ${{...}} placeholder survived templatefile"
        );
        // The deployed definition run twice per scenario: in-process and through the real
        // function binaries (tests/parity.rs).
        parity::every_scenario_agrees(described.definition()).await;
        if let Some(logging) = described.logging_configuration() {
            assert!(
                !logging.include_execution_data(),
                "execution data must stay out of the logs"
            );
        }
        if let Some(tracing) = described.tracing_configuration() {
            assert!(tracing.enabled(), "X-Ray tracing must be on");
        }

        // The deploy workflow's roles as deployed: the plan job's role covers every call of a
        // refresh, and the boundary is on every role ci-deploy may change.
        let iam = rotor_tests::moto::iam_client().await;
        let prefix = format!("rotor-{environment}");
        let mut ci_plan = deployed_policy_actions(&iam, &format!("{prefix}-ci-plan")).await;
        ci_plan.extend(deployed_policy_actions(&iam, &format!("{prefix}-ci-plan-account")).await);
        let mut ci_deploy = deployed_policy_actions(&iam, &format!("{prefix}-ci-deploy")).await;
        ci_deploy
            .extend(deployed_policy_actions(&iam, &format!("{prefix}-ci-deploy-account")).await);
        deployed_policy_actions(&iam, &format!("{prefix}-boundary")).await;
        let refresh = aws_calls(&replan_log);
        assert!(
            refresh.len() >= 20,
            "the re-plan's debug log shows only {} AWS calls: {refresh:?}",
            refresh.len()
        );
        let missing: Vec<_> = refresh
            .iter()
            .filter(|a| !ci_plan.contains(*a) && !NEEDS_NO_PERMISSION.contains(&a.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "terraform plan called {missing:?}, which ci-plan does not allow"
        );
        let bounded = FUNCTIONS
            .iter()
            .map(|f| f.to_string())
            .chain(["rotation-sfn", "scheduler", "age-check-sfn", "ci-rotate"].map(String::from));
        let boundary = format!("arn:aws:iam::123456789012:policy/{prefix}-boundary");
        for role in bounded {
            let name = format!("{prefix}-{role}");
            let got = iam
                .get_role()
                .role_name(&name)
                .send()
                .await
                .unwrap_or_else(|e| panic!("GetRole {name}: {e:?}"));
            let attached = got
                .role()
                .and_then(|r| r.permissions_boundary())
                .and_then(|b| b.permissions_boundary_arn());
            assert_eq!(
                attached,
                Some(boundary.as_str()),
                "{name}'s permissions boundary"
            );
        }

        // `rotor start` as ci-rotate, with the environments as shipped, reaches StartExecution
        // on the deployed state machine; then the deployment as deployed is read back for the
        // permission check (scripts/permissions.py, run by scripts/test after the suites),
        // which evaluates these calls and every moto suite's against it.
        start_as_ci_rotate(&endpoint, &environment, &arn);
        permissions_snapshot(&endpoint, &prefix);
        (ci_plan, ci_deploy)
    };
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(checks)).await;

    let destroyed = destroy(&root);
    let (ci_plan, ci_deploy) = match outcome {
        Ok(roles) => roles,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    assert!(destroyed.ok, "{}", destroyed.show("terraform destroy"));

    // Every call of the apply and the destroy is ci-deploy's (with ci-plan's reads), except the
    // administrator's (ADMIN_ONLY).
    let mut writes = aws_calls(&apply_log);
    writes.extend(aws_calls(&destroy_log));
    for &admin in ADMIN_ONLY {
        assert!(
            writes.contains(admin),
            "the apply/destroy log shows no {admin}: is the debug log still parsed right? {writes:?}"
        );
        assert!(
            !ci_deploy.contains(admin),
            "ci-deploy may {admin}: that is the administrator's"
        );
    }
    let missing: Vec<_> = writes
        .iter()
        .filter(|a| {
            !ci_deploy.contains(*a)
                && !ci_plan.contains(*a)
                && !ADMIN_ONLY.contains(&a.as_str())
                && !NEEDS_NO_PERMISSION.contains(&a.as_str())
        })
        .collect();
    assert!(
        missing.is_empty(),
        "terraform apply/destroy called {missing:?}, which ci-deploy does not allow"
    );
    assert!(
        destroyed.stdout.contains("Destroy complete!"),
        "{}",
        destroyed.show("terraform destroy")
    );
    assert_eq!(
        resources_in_state(&root),
        0,
        "resources left in the state after destroy"
    );
    eprintln!(
        "moto destroy: {added} resources in {:.1} s",
        destroyed.elapsed.as_secs_f64()
    );
}

/// `rotor --backend aws start` of the deployed vendor secret, signed as ci-rotate, exactly as the
/// rotate workflow runs it (no ROTOR_KMS_KEY_ID: the secret's own key): it must print the
/// execution it started. (moto cannot run the Lambda tasks; what happens after StartExecution
/// is the workflow tests'.)
fn start_as_ci_rotate(endpoint: &str, environment: &str, state_machine_arn: &str) {
    let rotor = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("rotor")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("the rotor binary is not built beside this test (cargo build -p rotor-cli)")
        });
    let store = tempfile::tempdir().expect("temporary store");
    let secret = format!("rotor-{environment}/openai_api_key");
    let out = Command::new(&rotor)
        .args(["--backend", "aws", "--endpoint-url", endpoint, "--store"])
        .arg(store.path())
        .args([
            "start",
            "--secret",
            &secret,
            "--candidate-env",
            "ROTOR_TEST_CANDIDATE",
        ])
        .args(["--reason", "permission check: start as ci-rotate"])
        .env("ROTOR_TEST_CANDIDATE", "sk-permission-check-candidate-0001")
        .env("ROTOR_STATE_MACHINE_ARN", state_machine_arn)
        .env("AWS_ACCESS_KEY_ID", rotor_tests::principals::CI_ROTATE_KEY)
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("ROTOR_KMS_KEY_ID")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_SESSION_TOKEN")
        .stdin(Stdio::null())
        .output()
        .expect("rotor runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let prefix =
        format!("arn:aws:states:us-east-1:123456789012:execution:rotor-{environment}-rotation:");
    assert!(
        out.status.success() && stdout.contains(&prefix),
        "rotor start as ci-rotate did not start an execution (exit {:?}):\n{stdout}\n{stderr}",
        out.status.code()
    );
    assert!(
        !stdout.contains("sk-permission-check") && !stderr.contains("sk-permission-check"),
        "the candidate was printed"
    );
}

/// scripts/permissions.py snapshot: the deployment's roles, policies, keys, secrets, state
/// machines, schedules and functions read back from moto, written where scripts/test's
/// permission check reads them (beside ROTOR_CALL_LOG_DIR, else target/permissions).
fn permissions_snapshot(endpoint: &str, prefix: &str) {
    let root = repo_root();
    let dir = std::env::var_os("ROTOR_CALL_LOG_DIR")
        .map(PathBuf::from)
        .and_then(|d| d.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| root.join("target/permissions"));
    let out = dir.join("deployment.json");
    let ran = Command::new(root.join(".venv/bin/python"))
        .arg(root.join("scripts/permissions.py"))
        .args([
            "snapshot",
            "--endpoint",
            endpoint,
            "--prefix",
            prefix,
            "--out",
        ])
        .arg(&out)
        .output()
        .expect("scripts/permissions.py runs (the .venv of scripts/test)");
    assert!(
        ran.status.success(),
        "scripts/permissions.py snapshot failed:\n{}{}",
        String::from_utf8_lossy(&ran.stdout),
        String::from_utf8_lossy(&ran.stderr)
    );
    eprint!("{}", String::from_utf8_lossy(&ran.stdout));
}

/// Calls of a whole apply or destroy that ci-deploy may not make: the lifecycle of identities,
/// keys and secrets is the administrator's (creating and deleting roles, their attachments and
/// managed policies, the key and its replica, the OIDC provider, secrets, their values and
/// replicas). Each must appear in the moto logs, and none may be ci-deploy's.
const ADMIN_ONLY: &[&str] = &[
    "kms:CreateKey",
    "kms:ReplicateKey",
    "kms:ScheduleKeyDeletion",
    "iam:CreateOpenIDConnectProvider",
    "iam:DeleteOpenIDConnectProvider",
    "iam:CreateRole",
    "iam:DeleteRole",
    "iam:AttachRolePolicy",
    "iam:DetachRolePolicy",
    "iam:CreatePolicy",
    "iam:DeletePolicy",
    "secretsmanager:CreateSecret",
    "secretsmanager:PutSecretValue",
    "secretsmanager:DeleteSecret",
    "secretsmanager:RemoveRegionsFromReplication",
    "secretsmanager:UpdateSecretVersionStage",
    // The secrets' resource policies (only the administrators write rotor:* tags).
    "secretsmanager:PutResourcePolicy",
    "secretsmanager:DeleteResourcePolicy",
    // The audit trail and its bucket (cloudtrail.tf): a deployment role that could change or
    // stop them could hide what it did.
    "cloudtrail:CreateTrail",
    "cloudtrail:StartLogging",
    "cloudtrail:DeleteTrail",
    "s3:CreateBucket",
    "s3:DeleteBucket",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutBucketTagging",
    "s3:PutBucketVersioning",
    "s3:PutEncryptionConfiguration",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutBucketOwnershipControls",
];

/// Calls IAM never denies.
const NEEDS_NO_PERMISSION: [&str; 1] = ["sts:GetCallerIdentity"];

/// The IAM action of each AWS call in a Terraform debug log (`rpc.service` and `rpc.method` of
/// the provider's "HTTP Request Sent"/"HTTP Response Received" entries; a request entry that
/// carries a function's zip is cut before those fields, its response entry is not).
fn aws_calls(log: &Path) -> BTreeSet<String> {
    let text = fs::read_to_string(log).unwrap_or_else(|e| panic!("read {}: {e}", log.display()));
    let mut calls = BTreeSet::new();
    let mut entry = String::new();
    let mut flush = |entry: &str| {
        if !entry.contains("HTTP Request Sent") && !entry.contains("HTTP Response Received") {
            return;
        }
        if let (Some(service), Some(method)) = (
            log_field(entry, "rpc.service"),
            log_field(entry, "rpc.method"),
        ) {
            let prefix = match service.as_str() {
                "CloudWatch" => "cloudwatch",
                "CloudWatch Logs" => "logs",
                "IAM" => "iam",
                "KMS" => "kms",
                "Lambda" => "lambda",
                "SFN" => "states",
                "SNS" => "sns",
                "STS" => "sts",
                "Scheduler" => "scheduler",
                "Secrets Manager" => "secretsmanager",
                "S3" => "s3",
                "CloudTrail" => "cloudtrail",
                other => panic!("a call to {other} (not mapped to an IAM service prefix here)"),
            };
            let action = if prefix == "s3" {
                s3_action(&method)
            } else {
                method.as_str()
            };
            calls.insert(format!("{prefix}:{action}"));
        }
    };
    for line in text.lines() {
        // Each entry starts with its timestamp; continuation lines belong to the entry before.
        if line.len() > 4
            && line.as_bytes()[..4].iter().all(u8::is_ascii_digit)
            && line.as_bytes()[4] == b'-'
        {
            flush(&entry);
            entry.clear();
        }
        entry.push_str(line);
        entry.push('\n');
    }
    flush(&entry);
    calls
}

/// The IAM action an S3 API operation needs, where the two names differ (the Service
/// Authorization Reference's table for Amazon S3); the others are the operation's name.
fn s3_action(operation: &str) -> &str {
    match operation {
        "HeadBucket" | "ListObjects" | "ListObjectsV2" => "ListBucket",
        "ListObjectVersions" => "ListBucketVersions",
        "GetBucketAccelerateConfiguration" => "GetAccelerateConfiguration",
        "GetBucketCors" => "GetBucketCORS",
        "GetBucketEncryption" => "GetEncryptionConfiguration",
        "PutBucketEncryption" | "DeleteBucketEncryption" => "PutEncryptionConfiguration",
        "GetBucketLifecycleConfiguration" => "GetLifecycleConfiguration",
        "PutBucketLifecycleConfiguration" | "DeleteBucketLifecycle" => "PutLifecycleConfiguration",
        "GetBucketReplication" => "GetReplicationConfiguration",
        "GetObjectLockConfiguration" => "GetBucketObjectLockConfiguration",
        "GetPublicAccessBlock" => "GetBucketPublicAccessBlock",
        "PutPublicAccessBlock" | "DeletePublicAccessBlock" => "PutBucketPublicAccessBlock",
        "DeleteBucketOwnershipControls" => "PutBucketOwnershipControls",
        other => other,
    }
}

/// A field of a Terraform log entry: `name=value`, `name="two words"` or JSON `"name":"value"`.
fn log_field(entry: &str, name: &str) -> Option<String> {
    if let Some(at) = entry.find(&format!("\"{name}\":\"")) {
        let rest = &entry[at + name.len() + 4..];
        return rest.find('"').map(|end| rest[..end].to_string());
    }
    let at = entry.find(&format!(" {name}="))?;
    let rest = &entry[at + name.len() + 2..];
    if let Some(quoted) = rest.strip_prefix('"') {
        return quoted.find('"').map(|end| quoted[..end].to_string());
    }
    Some(rest.split_whitespace().next().unwrap_or("").to_string())
}

/// The Allow actions of a deployed managed policy, read back through IAM; also checks the size
/// AWS allows a managed policy (6,144 characters without whitespace), which moto does not.
async fn deployed_policy_actions(iam: &aws_sdk_iam::Client, name: &str) -> BTreeSet<String> {
    let arn = format!("arn:aws:iam::123456789012:policy/{name}");
    let policy = iam
        .get_policy()
        .policy_arn(&arn)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetPolicy {arn}: {e:?}"));
    let version = policy
        .policy()
        .and_then(|p| p.default_version_id())
        .unwrap_or_else(|| panic!("{arn} has no default version"))
        .to_string();
    let got = iam
        .get_policy_version()
        .policy_arn(&arn)
        .version_id(&version)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetPolicyVersion {arn}: {e:?}"));
    let raw = got
        .policy_version()
        .and_then(|v| v.document())
        .unwrap_or_else(|| panic!("{arn} has no document"));
    // IAM returns the document URL-encoded (RFC 3986); moto may not.
    let text = if raw.trim_start().starts_with('{') {
        raw.to_string()
    } else {
        percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .expect("URL-encoded UTF-8")
            .into_owned()
    };
    let document: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{arn}: {e}: {text}"));
    let compact = serde_json::to_string(&document).expect("JSON");
    let size = compact.chars().filter(|c| !c.is_whitespace()).count();
    assert!(
        size <= 6144,
        "{name} is {size} characters: AWS refuses managed policies over 6,144"
    );
    eprintln!("{name}: {size} of 6,144 characters");
    let statements = document["Statement"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    statements
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .flat_map(|s| match &s["Action"] {
            Value::String(a) => vec![a.clone()],
            Value::Array(all) => all
                .iter()
                .filter_map(|a| a.as_str().map(String::from))
                .collect(),
            _ => vec![],
        })
        .collect()
}

/// The checkov venv (target/checkov-venv from requirements-checkov.txt), built when missing or
/// when that file changed; built aside and renamed into place, so two runs never share a
/// half-built one.
fn checkov_python() -> PathBuf {
    let root = repo_root();
    let requirements = root.join("requirements-checkov.txt");
    let wanted = fs::read_to_string(&requirements).expect("requirements-checkov.txt");
    let venv = root.join("target/checkov-venv");
    let stamp = |dir: &Path| dir.join(".rotor-requirements");
    let python = venv.join("bin/python");
    if python.is_file() && fs::read_to_string(stamp(&venv)).is_ok_and(|s| s == wanted) {
        return python;
    }
    let building = root.join(format!(
        "target/checkov-venv.building-{}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&building);
    fs::create_dir_all(root.join("target")).expect("target/");
    eprintln!(
        "checkov: creating target/checkov-venv from requirements-checkov.txt (about a minute)"
    );
    let mut venv_cmd = Command::new("python3");
    venv_cmd.args(["-m", "venv"]).arg(&building);
    let ran = run(venv_cmd, Duration::from_secs(120));
    assert!(
        ran.ok,
        "{}",
        ran.show("python3 -m venv (on Debian: apt-get install python3-venv)")
    );
    let mut pip = Command::new(building.join("bin/python"));
    pip.args([
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
        "--no-input",
        "-r",
    ])
    .arg(&requirements);
    let ran = run(pip, Duration::from_secs(900));
    assert!(
        ran.ok,
        "{}",
        ran.show("pip install -r requirements-checkov.txt")
    );
    fs::write(stamp(&building), &wanted).expect("stamp");
    let _ = fs::remove_dir_all(&venv);
    if fs::rename(&building, &venv).is_err() {
        // Another run renamed its own first: use that one.
        let _ = fs::remove_dir_all(&building);
    }
    assert!(python.is_file(), "{} missing", python.display());
    python
}

/// Every `#checkov:skip=ID:reason` in the Terraform, as (file, id, reason).
fn inline_skips() -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    let mut stack = vec![repo_root().join("infrastructure")];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let Ok(text) = fs::read_to_string(&path) else {
                continue;
            };
            for line in text.lines() {
                if let Some(rest) = line.trim().strip_prefix("#checkov:skip=") {
                    let (id, reason) = rest.split_once(':').unwrap_or((rest, ""));
                    found.push((
                        path.display().to_string(),
                        id.trim().to_string(),
                        reason.trim().to_string(),
                    ));
                }
            }
        }
    }
    found
}

#[test]
fn checkov_finds_nothing() {
    // Every skip is inline, with its reason, and one of the argued ones.
    let skips = inline_skips();
    assert!(
        !skips.is_empty(),
        "no inline skip found: is the scan reading the right tree?"
    );
    for (file, id, reason) in &skips {
        assert!(
            reason.len() >= 30,
            "{file}: #checkov:skip={id} needs its reason after the colon"
        );
        assert!(
            ALLOWED_SKIPS.contains(&id.as_str()),
            "{file}: #checkov:skip={id} is not one of the argued skips {ALLOWED_SKIPS:?}"
        );
    }

    let python = checkov_python();
    let mut cmd = Command::new(python);
    cmd.args(["-m", "checkov.main", "-d"])
        .arg(repo_root().join("infrastructure"))
        .args([
            "--framework",
            "terraform",
            "--skip-download",
            // Terraform test files are not configuration (and checkov's HCL parser times out
            // on them).
            "--skip-path",
            r"\.tftest\.hcl$",
            "--output",
            "json",
        ])
        .env("CKV_SKIP_PACKAGE_UPDATE_CHECK", "true")
        .env("BC_SKIP_MAPPING", "TRUE");
    let ran = run(cmd, Duration::from_secs(600));
    // checkov exits 1 when a check fails; the JSON says which.
    let report: Value = serde_json::from_str(&ran.stdout)
        .unwrap_or_else(|e| panic!("checkov's JSON ({e}):\n{}", ran.show("checkov")));
    let reports: Vec<&Value> = match &report {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let mut passed = 0;
    let mut skipped = 0;
    let mut failed = Vec::new();
    let mut skipped_ids = BTreeSet::new();
    for r in reports {
        let summary = &r["summary"];
        passed += summary["passed"].as_u64().unwrap_or(0);
        skipped += summary["skipped"].as_u64().unwrap_or(0);
        assert_eq!(
            summary["parsing_errors"].as_u64(),
            Some(0),
            "checkov could not parse some Terraform:\n{}",
            ran.show("checkov")
        );
        for f in r["results"]["failed_checks"]
            .as_array()
            .into_iter()
            .flatten()
        {
            failed.push(format!(
                "{} {} ({}:{})",
                f["check_id"].as_str().unwrap_or("?"),
                f["resource"].as_str().unwrap_or("?"),
                f["file_path"].as_str().unwrap_or("?"),
                f["file_line_range"]
            ));
        }
        for s in r["results"]["skipped_checks"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let id = s["check_id"].as_str().unwrap_or("?").to_string();
            let reason = s["check_result"]["suppress_comment"]
                .as_str()
                .or_else(|| s["suppress_comment"].as_str())
                .unwrap_or("");
            assert!(
                !reason.trim().is_empty(),
                "checkov skipped {id} on {} without a reason",
                s["resource"]
            );
            skipped_ids.insert(id);
        }
    }
    assert!(
        failed.is_empty(),
        "checkov failed checks:\n{}",
        failed.join("\n")
    );
    assert!(
        passed > 50,
        "checkov passed only {passed} checks:\n{}",
        ran.show("checkov")
    );
    eprintln!("checkov: {passed} passed, 0 failed, {skipped} skipped ({skipped_ids:?})");
    for id in &skipped_ids {
        assert!(
            ALLOWED_SKIPS.contains(&id.as_str()),
            "checkov skipped {id}, which is not an argued inline skip"
        );
    }
}

/// The six functions are listed once, in rotor_core::dispatch::FUNCTIONS; the scripts that
/// cannot read it (packaging, the permission check) and the crates under functions/ say the same.
#[test]
fn every_list_of_the_functions_is_the_dispatchs() {
    let six: Vec<String> = FUNCTIONS.iter().map(|f| f.to_string()).collect();
    let package = fs::read_to_string(repo_root().join("scripts/package")).expect("scripts/package");
    let all = package
        .lines()
        .find_map(|l| l.strip_prefix("ALL=("))
        .and_then(|l| l.strip_suffix(')'))
        .expect("scripts/package has ALL=(...)");
    assert_eq!(
        all.split_whitespace().collect::<Vec<_>>(),
        six,
        "scripts/package ALL"
    );
    let permissions =
        fs::read_to_string(repo_root().join("scripts/permissions.py")).expect("permissions.py");
    let listed = permissions
        .lines()
        .find_map(|l| l.strip_prefix("FUNCTIONS = "))
        .expect("scripts/permissions.py has FUNCTIONS = [...]");
    let listed: Vec<String> = serde_json::from_str(listed).expect("a JSON-shaped list");
    assert_eq!(listed, six, "scripts/permissions.py FUNCTIONS");
    let mut crates: Vec<String> = fs::read_dir(repo_root().join("functions"))
        .expect("functions/")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    crates.sort();
    let mut sorted = six.clone();
    sorted.sort();
    assert_eq!(crates, sorted, "the crates under functions/");
}

#[test]
fn packaging_script_is_valid_bash() {
    let script = repo_root().join("scripts/package");
    let mut cmd = Command::new("bash");
    cmd.arg("-n").arg(&script);
    let ran = run(cmd, Duration::from_secs(30));
    assert!(ran.ok, "{}", ran.show("bash -n scripts/package"));
    let text = fs::read_to_string(&script).expect("scripts/package");
    for needle in [
        "cargo lambda build --release",
        "--output-format zip",
        "aarch64-unknown-linux-gnu",
        "requirements-package.txt",
        "bootstrap.sha256",
    ] {
        assert!(text.contains(needle), "scripts/package lost {needle:?}");
    }
}

/// The ECS example reads the development environment's seven vendor keys with `valueFrom`, and
/// the local development template names the same variables (no values).
#[test]
fn the_ecs_example_and_the_env_template_name_the_seven_vendor_keys() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let task: Value = serde_json::from_str(
        &fs::read_to_string(root.join("examples/ecs/task-definition.json")).unwrap(),
    )
    .unwrap();
    let env =
        fs::read_to_string(root.join("infrastructure/environments/development/main.tf")).unwrap();
    let mut names = BTreeSet::new();
    for s in task["containerDefinitions"][0]["secrets"]
        .as_array()
        .unwrap()
    {
        let arn = s["valueFrom"].as_str().unwrap();
        let secret = arn
            .split_once(":secret:")
            .and_then(|(_, rest)| rest.rsplit_once('-'))
            .map(|(name, _suffix)| name)
            .unwrap_or_else(|| panic!("{arn} is not a Secrets Manager secret ARN"));
        assert!(
            env.contains(&format!("name                     = \"{secret}\"")),
            "{secret} is not a secret of the development environment"
        );
        names.insert(s["name"].as_str().unwrap().to_string());
    }
    assert_eq!(names.len(), 7, "{names:?}");
    let template = fs::read_to_string(root.join("examples/backend.env.template")).unwrap();
    let template_names: BTreeSet<String> = template
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (name, value) = l.split_once('=').unwrap();
            assert_eq!(value, "", "the template holds no value: {l}");
            name.to_string()
        })
        .collect();
    assert_eq!(template_names, names);
}
