//! One mapping from an AWS SDK error to a [`RotorError`] with its ASL name.
//!
//! The state machine retries `Aws.Throttled` (5 attempts, backoff); everything else is caught
//! and ends the rotation safely. So the question for each failure is "will the same call work
//! if we simply try again later?":
//!
//! | what the SDK reports | ASL name | why |
//! |---|---|---|
//! | a throttling code (`ThrottlingException`, `Throttling`, `TooManyRequestsException`, `RequestLimitExceeded`, ...) or HTTP 429 | `Aws.Throttled` | retried |
//! | a transient service fault (`InternalServiceError`, `ServiceUnavailable`, `KMSInternalException`, `DependencyTimeoutException`, ..., any HTTP 5xx) | `Aws.Throttled` | retried: AWS documents these as retryable |
//! | timeout, connection refused/reset, other I/O while sending | `Aws.Throttled` | a transient network failure: retried |
//! | not found (`ResourceNotFoundException`, `NoSuchEntity`, `NotFoundException`) | `Input.Invalid` | "secret X does not exist (ResourceNotFoundException: ...)" |
//! | a refused request (`InvalidRequestException`, `InvalidParameterException`, `ValidationException`, `ResourceExistsException`, ...) | `Input.Invalid` | the request itself is wrong |
//! | credentials or permissions (`AccessDenied*`, `UnrecognizedClientException`, `ExpiredToken`, ...), no credentials, no region, an unreadable answer, any other code | `Rotor.Internal` | needs an operator; retrying won't help |
//!
//! The SDK itself already retries throttling and transient errors (standard mode, 3 attempts)
//! before any of this runs. Every message keeps the service's error code and message (the
//! "cause"), which never contains a secret value: rotor never sends a value where AWS would
//! echo it back.
//!
//! Operation-specific meanings are decided by the adapters before falling back to
//! [`map_sdk_error`]: IAM's `LimitExceeded` on CreateAccessKey is `Rotation.KeyLimit`, KMS's
//! `InvalidCiphertextException` on Decrypt is `Candidate.Invalid`.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::retry::ErrorKind;
use rotor_core::error::RotorError;
use std::error::Error as StdError;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Counts the attempts of one call (an interceptor: `.customize().interceptor(a.clone())`):
/// more than one means the SDK retried, and the first attempt may have been applied although
/// its answer was lost, so a refusal of the retry may be "already done".
#[derive(Debug, Clone, Default)]
pub struct Attempts(Arc<AtomicU32>);

impl Attempts {
    /// Attempts sent so far.
    pub fn count(&self) -> u32 {
        self.0.load(Ordering::SeqCst)
    }

    /// Whether the SDK sent the call more than once.
    pub fn retried(&self) -> bool {
        self.count() > 1
    }
}

impl Intercept for Attempts {
    fn name(&self) -> &'static str {
        "rotor-aws::Attempts"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// Codes AWS services use for throttling (the SDK's retry classifier's list, without
/// `LimitExceededException`).
pub const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// Codes for "the thing named does not exist".
pub const NOT_FOUND_CODES: &[&str] = &[
    "ResourceNotFoundException",
    "NoSuchEntity",
    "NotFoundException",
];

/// Codes for "this request is wrong" (parameters, state, duplicates).
pub const INVALID_REQUEST_CODES: &[&str] = &[
    "InvalidRequestException",
    "InvalidParameterException",
    "InvalidParameter",
    "InvalidParameterValue",
    "InvalidParameterCombination",
    "InvalidInput",
    "MissingParameter",
    "ValidationException",
    "ValidationError",
    "MalformedPolicyDocument",
    "MalformedPolicyDocumentException",
    "ResourceExistsException",
    "EntityAlreadyExists",
    "PreconditionNotMetException",
    "InvalidNextTokenException",
    "InvalidKeyUsageException",
    "DisabledException",
    "KMSInvalidStateException",
];

/// Codes for transient faults on the service's side.
pub const TRANSIENT_CODES: &[&str] = &[
    "InternalServiceError",
    "InternalServiceErrorException",
    "InternalFailure",
    "InternalError",
    "InternalServerError",
    "ServiceFailure",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "KMSInternalException",
    "DependencyTimeoutException",
    "KeyUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
];

/// Codes for "rotor's own identity is not allowed or not valid".
pub const DENIED_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "InvalidSignatureException",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "ExpiredToken",
    "ExpiredTokenException",
    "NotAuthorized",
    "OptInRequired",
];

// The SDK's retry classifier also treats `LimitExceededException` as throttling; Secrets
// Manager and KMS use it for quotas that retrying within minutes will not lift, so here it is
// `Rotor.Internal`. IAM's `LimitExceeded` (two keys per user) is `Rotation.KeyLimit`, decided
// in the IAM adapter.

/// The AWS call a failure belongs to: named in every message.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// "Secrets Manager", "KMS", "IAM", "STS", "CloudWatch".
    pub service: &'static str,
    /// The API operation, e.g. "PutSecretValue".
    pub operation: &'static str,
    /// What the call was about, e.g. "secret app/key", "IAM user ci-bot".
    pub subject: &'a str,
}

impl<'a> Call<'a> {
    pub fn new(service: &'static str, operation: &'static str, subject: &'a str) -> Self {
        Call {
            service,
            operation,
            subject,
        }
    }
}

/// What went wrong, stripped of the SDK's types (so the mapping is testable on plain data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The service answered with an error.
    Service {
        code: Option<String>,
        message: Option<String>,
        status: Option<u16>,
    },
    /// Timeout, connection refused or reset, I/O: the request may not have arrived.
    Network(String),
    /// An answer that could not be read.
    Unreadable { detail: String, status: Option<u16> },
    /// Anything else on our side: no credentials, no region, an invalid request.
    Local(String),
}

impl Failure {
    /// The service's error code, when there is one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Failure::Service { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// `Code: message` as the service sent them (what goes into a message's parentheses).
    pub fn cause(&self) -> String {
        match self {
            Failure::Service {
                code,
                message,
                status,
            } => {
                let code = code.as_deref().unwrap_or("UnknownError");
                match (message.as_deref(), status) {
                    (Some(m), _) if !m.is_empty() => format!("{code}: {m}"),
                    (_, Some(s)) => format!("{code}: HTTP {s}"),
                    _ => code.to_string(),
                }
            }
            Failure::Network(d) | Failure::Local(d) => d.clone(),
            Failure::Unreadable { detail, .. } => detail.clone(),
        }
    }
}

/// Strips an SDK error down to a [`Failure`].
pub fn classify<E>(err: &SdkError<E, HttpResponse>) -> Failure
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    match err {
        SdkError::ServiceError(ctx) => {
            let e = ctx.err();
            Failure::Service {
                code: e.code().map(str::to_string),
                message: e.message().map(str::to_string),
                status: Some(ctx.raw().status().as_u16()),
            }
        }
        SdkError::TimeoutError(_) => {
            Failure::Network(format!("timed out: {}", DisplayErrorContext(err)))
        }
        SdkError::DispatchFailure(d) => {
            let transient = d.is_io()
                || d.is_timeout()
                || matches!(
                    d.as_other(),
                    Some(ErrorKind::TransientError | ErrorKind::ThrottlingError)
                );
            if transient {
                Failure::Network(DisplayErrorContext(err).to_string())
            } else {
                Failure::Local(DisplayErrorContext(err).to_string())
            }
        }
        SdkError::ResponseError(r) => Failure::Unreadable {
            detail: DisplayErrorContext(err).to_string(),
            status: Some(r.raw().status().as_u16()),
        },
        SdkError::ConstructionFailure(_) => Failure::Local(DisplayErrorContext(err).to_string()),
        // `SdkError` is non-exhaustive.
        _ => Failure::Local(DisplayErrorContext(err).to_string()),
    }
}

fn is(code: Option<&str>, list: &[&str]) -> bool {
    code.is_some_and(|c| list.contains(&c))
}

/// The generic mapping (see the module documentation).
pub fn to_rotor(failure: &Failure, call: Call<'_>) -> RotorError {
    let Call {
        service,
        operation,
        subject,
    } = call;
    let cause = failure.cause();
    match failure {
        Failure::Service { code, status, .. } => {
            let code = code.as_deref();
            let status = status.unwrap_or(0);
            if is(code, THROTTLING_CODES) || status == 429 {
                RotorError::Throttled(format!(
                    "{service} throttled {operation} for {subject} ({cause}): retried later"
                ))
            } else if is(code, NOT_FOUND_CODES) {
                RotorError::input(format!("{subject} does not exist ({cause})"))
            } else if is(code, INVALID_REQUEST_CODES) {
                RotorError::input(format!(
                    "{service} refused {operation} for {subject} ({cause})"
                ))
            } else if is(code, DENIED_CODES) {
                RotorError::internal(format!(
                    "{service} denied {operation} for {subject} ({cause}): check rotor's AWS credentials and IAM permissions"
                ))
            } else if is(code, TRANSIENT_CODES) || (500..600).contains(&status) {
                RotorError::Throttled(format!(
                    "{service} failed {operation} for {subject} with a transient error ({cause}): retried later"
                ))
            } else {
                RotorError::internal(format!(
                    "{service} {operation} failed for {subject} ({cause})"
                ))
            }
        }
        Failure::Network(_) => RotorError::Throttled(format!(
            "{service} {operation} for {subject} did not get through (transient network failure: {cause}): retried later"
        )),
        Failure::Unreadable { status, .. } => {
            if matches!(status, Some(429) | Some(500..=599)) {
                RotorError::Throttled(format!(
                    "{service} {operation} for {subject}: transient error with an unreadable answer ({cause}): retried later"
                ))
            } else {
                RotorError::internal(format!(
                    "{service} {operation} for {subject}: the answer could not be read ({cause})"
                ))
            }
        }
        Failure::Local(_) => RotorError::internal(format!(
            "{service} {operation} for {subject} could not be sent ({cause}): check the AWS region and credentials (--region, AWS_REGION, the default credential chain) and the endpoint (--endpoint-url, AWS_ENDPOINT_URL)"
        )),
    }
}

/// [`classify`] then [`to_rotor`]: the one mapping every adapter falls back to.
pub fn map_sdk_error<E>(err: &SdkError<E, HttpResponse>, call: Call<'_>) -> RotorError
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    to_rotor(&classify(err), call)
}

/// [`map_sdk_error`], except for the one error code `code` that means something of its own
/// for this operation (IAM's `LimitExceeded` on CreateAccessKey, ...): that failure is
/// `special(cause)`, with the failure's [`Failure::cause`].
pub fn map_sdk_error_except<E>(
    err: &SdkError<E, HttpResponse>,
    call: Call<'_>,
    code: &str,
    special: impl FnOnce(String) -> RotorError,
) -> RotorError
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    let f = classify(err);
    if f.code() == Some(code) {
        return special(f.cause());
    }
    to_rotor(&f, call)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn service(
        code: &str,
        message: &str,
        status: u16,
    ) -> SdkError<GetSecretValueError, HttpResponse> {
        let meta = ErrorMetadata::builder().code(code).message(message).build();
        SdkError::service_error(
            GetSecretValueError::generic(meta),
            HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty()),
        )
    }

    fn call() -> Call<'static> {
        Call::new("Secrets Manager", "GetSecretValue", "secret app/key")
    }

    fn mapped(code: &str, message: &str, status: u16) -> RotorError {
        map_sdk_error(&service(code, message, status), call())
    }

    #[test]
    fn throttling_codes_are_aws_throttled() {
        for code in [
            "ThrottlingException",
            "Throttling",
            "TooManyRequestsException",
            "RequestLimitExceeded",
        ] {
            let e = mapped(code, "Rate exceeded", 400);
            assert_eq!(e.asl_name(), "Aws.Throttled", "{code}");
            assert!(
                e.to_string().contains(&format!("({code}: Rate exceeded)")),
                "{e}"
            );
            assert!(e.to_string().contains("GetSecretValue"), "{e}");
        }
        // An unknown code with HTTP 429 is throttling too.
        assert_eq!(
            mapped("Whatever", "slow down", 429).asl_name(),
            "Aws.Throttled"
        );
    }

    #[test]
    fn not_found_names_the_secret_and_keeps_the_service_message() {
        let e = mapped(
            "ResourceNotFoundException",
            "Secrets Manager can't find the specified secret.",
            400,
        );
        assert_eq!(e.asl_name(), "Input.Invalid");
        assert_eq!(
            e.to_string(),
            "secret app/key does not exist (ResourceNotFoundException: Secrets Manager can't find the specified secret.)"
        );
        // moto answers 404; the mapping goes by the code, not the status.
        assert_eq!(
            mapped("ResourceNotFoundException", "x", 404).asl_name(),
            "Input.Invalid"
        );
        assert_eq!(mapped("NoSuchEntity", "x", 404).asl_name(), "Input.Invalid");
    }

    #[test]
    fn invalid_requests_are_input_invalid() {
        for code in [
            "InvalidRequestException",
            "InvalidParameterException",
            "ValidationException",
            "ResourceExistsException",
        ] {
            let e = mapped(code, "bad", 400);
            assert_eq!(e.asl_name(), "Input.Invalid", "{code}");
            assert!(e.to_string().contains(&format!("{code}: bad")), "{e}");
        }
    }

    #[test]
    fn server_faults_are_retried_and_denials_are_not() {
        assert_eq!(
            mapped("InternalServiceError", "oops", 500).asl_name(),
            "Aws.Throttled"
        );
        assert_eq!(
            mapped("SomethingNew", "oops", 503).asl_name(),
            "Aws.Throttled"
        );
        let denied = mapped("AccessDeniedException", "not authorized", 400);
        assert_eq!(denied.asl_name(), "Rotor.Internal");
        assert!(denied.to_string().contains("IAM permissions"), "{denied}");
        assert_eq!(
            mapped("SomethingNew", "?", 400).asl_name(),
            "Rotor.Internal"
        );
    }

    #[test]
    fn network_failures_are_retried_and_local_ones_are_not() {
        let io: SdkError<GetSecretValueError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io(Box::new(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "connection reset by peer",
            ))));
        let e = map_sdk_error(&io, call());
        assert_eq!(e.asl_name(), "Aws.Throttled");
        assert!(e.to_string().contains("transient network failure"), "{e}");
        assert!(e.to_string().contains("connection reset by peer"), "{e}");

        let timeout: SdkError<GetSecretValueError, HttpResponse> =
            SdkError::timeout_error("operation timeout (all attempts including retries)");
        assert_eq!(map_sdk_error(&timeout, call()).asl_name(), "Aws.Throttled");

        let no_credentials: SdkError<GetSecretValueError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::other("no credentials".into(), None));
        let e = map_sdk_error(&no_credentials, call());
        assert_eq!(e.asl_name(), "Rotor.Internal");
        assert!(e.to_string().contains("no credentials"), "{e}");

        let construction: SdkError<GetSecretValueError, HttpResponse> =
            SdkError::construction_failure("no region");
        assert_eq!(
            map_sdk_error(&construction, call()).asl_name(),
            "Rotor.Internal"
        );
    }

    #[test]
    fn one_code_can_mean_something_else() {
        let special = |code: &str| {
            map_sdk_error_except(
                &service(code, "it exists", 400),
                call(),
                "ResourceExistsException",
                |cause| RotorError::KeyLimit(format!("special ({cause})")),
            )
        };
        let e = special("ResourceExistsException");
        assert_eq!(e.asl_name(), "Rotation.KeyLimit");
        assert_eq!(
            e.to_string(),
            RotorError::KeyLimit("special (ResourceExistsException: it exists)".into()).to_string()
        );
        // Any other code: the common mapping, with the call in the message.
        let e = special("InvalidRequestException");
        assert_eq!(
            e.to_string(),
            mapped("InvalidRequestException", "it exists", 400).to_string()
        );
        assert!(e.to_string().contains("GetSecretValue"), "{e}");
    }

    #[test]
    fn unreadable_answers() {
        let bad = |status: u16| -> SdkError<GetSecretValueError, HttpResponse> {
            SdkError::response_error(
                "not JSON",
                HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty()),
            )
        };
        assert_eq!(map_sdk_error(&bad(502), call()).asl_name(), "Aws.Throttled");
        assert_eq!(
            map_sdk_error(&bad(200), call()).asl_name(),
            "Rotor.Internal"
        );
    }
}
