//! Cold starts of the function binaries through the loopback Lambda Runtime API: for each of
//! the six, `ROTOR_BENCH_COLD_STARTS` (default 5) fresh processes, each invoked once with a
//! payload its function refuses at once (`{}`: Input.Invalid, no AWS call), so what is
//! measured is the init (spawn to the first `/next`: building the AWS clients and the prober),
//! the first round trip, and the peak resident memory. The binaries are
//! `ROTOR_LAMBDA_BINARIES` (scripts/bench: target/debug unless given); the environment is a
//! deployed function's on the aws backend (region set, no endpoint, nothing called).
//! Prints a table and writes `target/bench/lambda-cold-start.json`.

use rotor_asl::task::FunctionInvoker;
use rotor_runtime_api::{Logs, Options, RuntimeApi};
use std::path::PathBuf;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    // The workspace's target directory (cargo runs a bench in its package's directory).
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = std::env::var("ROTOR_LAMBDA_BINARIES")
        .map(PathBuf::from)
        .unwrap_or_else(|_| target.join("debug"));
    let runs: usize = std::env::var("ROTOR_BENCH_COLD_STARTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(5);
    println!(
        "lambda cold start: {} ({runs} cold starts per function)",
        dir.display()
    );
    println!(
        "{:<20} {:>10} {:>14} {:>14}",
        "function", "init ms", "first call ms", "peak RSS KiB"
    );
    let mut rows = Vec::new();
    for f in rotor_core::dispatch::FUNCTIONS {
        let (mut inits, mut calls, mut rss) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let mut options = Options::new(&dir);
            options.logs = Logs::Discard;
            options.env = vec![
                ("ROTOR_BACKEND".into(), "aws".into()),
                ("AWS_REGION".into(), "us-east-1".into()),
                ("AWS_ACCESS_KEY_ID".into(), "bench".into()),
                ("AWS_SECRET_ACCESS_KEY".into(), "bench".into()),
            ];
            let api = RuntimeApi::new(options).expect("the function binaries");
            let started = Instant::now();
            let answer = api.invoke(f, serde_json::json!({})).await;
            let call = started.elapsed().as_secs_f64() * 1000.0;
            let refused = answer.expect_err("{} is refused");
            assert_eq!(refused.error_type, "Input.Invalid", "{f}: {refused:?}");
            let report = api.stop().await.remove(0);
            inits.push(report.init_ms.expect("an init time"));
            calls.push(call);
            rss.push(report.peak_rss_kib.unwrap_or(0));
        }
        let row = serde_json::json!({
            "function": f,
            "init_ms_median": median(inits),
            "first_call_ms_median": median(calls),
            "peak_rss_kib_max": rss.iter().max(),
        });
        println!(
            "{:<20} {:>10.1} {:>14.1} {:>14}",
            f,
            row["init_ms_median"].as_f64().unwrap(),
            row["first_call_ms_median"].as_f64().unwrap(),
            row["peak_rss_kib_max"]
        );
        rows.push(row);
    }
    let out = target.join("bench");
    std::fs::create_dir_all(&out).expect("target/bench");
    let doc = serde_json::json!({"binaries": dir.display().to_string(), "cold_starts": runs, "functions": rows});
    std::fs::write(
        out.join("lambda-cold-start.json"),
        serde_json::to_string_pretty(&doc).unwrap(),
    )
    .expect("write the figures");
}
