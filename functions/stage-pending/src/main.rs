//! stage-pending: stage the candidate on AWSPENDING under the execution's token.

use rotor_core::events::StagePendingInput;
use rotor_core::handlers;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    rotor_lambda::serve(
        "stage-pending",
        |services, input: StagePendingInput| async move {
            handlers::stage_pending(&services, input).await
        },
    )
    .await
}
