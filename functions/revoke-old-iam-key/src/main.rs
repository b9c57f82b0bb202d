//! revoke-old-iam-key: deactivate, then after the grace period delete, the old IAM access key.

use rotor_core::events::RevokeInput;
use rotor_core::handlers;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    rotor_lambda::serve(
        "revoke-old-iam-key",
        |services, input: RevokeInput| async move {
            handlers::revoke_old_iam_key(&services, input).await
        },
    )
    .await
}
