//! revoke-old-iam-key: deactivate, then after the grace period delete, the old IAM access key.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    rotor_lambda::serve("revoke-old-iam-key").await
}
