//! promote: move AWSCURRENT to the staged version (compare-and-swap), then clear AWSPENDING.

use rotor_core::events::PromoteInput;
use rotor_core::handlers;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    rotor_lambda::serve("promote", |services, input: PromoteInput| async move {
        handlers::promote(&services, input).await
    })
    .await
}
