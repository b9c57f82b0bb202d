//! audit-log: write the execution's audit record and metrics; never a value.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    rotor_lambda::serve("audit-log").await
}
