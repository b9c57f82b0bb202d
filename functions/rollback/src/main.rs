//! rollback: abandon a staged candidate, revert a promotion, or plan a manual rollback.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    rotor_lambda::serve("rollback").await
}
