//! rollback: abandon a staged candidate, revert a promotion, or plan a manual rollback.

use rotor_core::events::RollbackInput;
use rotor_core::handlers;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    rotor_lambda::serve("rollback", |services, input: RollbackInput| async move {
        handlers::rollback(&services, input).await
    })
    .await
}
