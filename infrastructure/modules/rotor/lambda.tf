# The six Lambda functions (provided.al2023, one `bootstrap` binary each, built by
# scripts/package), each with its own role (iam.tf), log group, reserved concurrency and X-Ray.

locals {
  zip_manifest_file = "${var.lambda_zip_dir}/manifest.json"
  zip_manifest      = fileexists(local.zip_manifest_file) ? jsondecode(file(local.zip_manifest_file)) : null
  zip_architecture  = try(local.zip_manifest.architecture, null)

  function_zips = {
    for f in local.function_names : f => "${var.lambda_zip_dir}/${f}.zip"
  }
  # Hash of the bootstrap binary (scripts/package writes it): zips embed timestamps, so hashing
  # the zip would redeploy unchanged code after every build. Without the file (placeholder zips
  # in tests), the zip's hash.
  function_code_hashes = {
    for f, zip in local.function_zips : f => (
      fileexists("${var.lambda_zip_dir}/${f}.bootstrap.sha256") ? trimspace(file("${var.lambda_zip_dir}/${f}.bootstrap.sha256")) :
      fileexists(zip) ? filebase64sha256(zip) : null
    )
  }

  function_environment = {
    ROTOR_BACKEND    = "aws"
    ROTOR_KMS_KEY_ID = aws_kms_key.this.arn
    RUST_LOG         = var.log_level
  }
  # Only health-probe sends a candidate anywhere (crates/core/src/probe_destination.rs).
  function_environments = {
    for f in local.function_names : f => f == "health-probe" && length(var.probe_allowed_hosts) > 0 ? merge(local.function_environment, {
      ROTOR_PROBE_ALLOWED_HOSTS = join(",", var.probe_allowed_hosts)
    }) : local.function_environment
  }
}

resource "aws_cloudwatch_log_group" "function" {
  for_each = local.function_log_groups

  name              = each.value
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}

resource "aws_lambda_function" "this" {
  for_each = local.function_full_names
  #checkov:skip=CKV_AWS_116:Only the state machine invokes these functions, synchronously (lambda:invoke); it retries and catches every failure, so there is no asynchronous event a dead-letter queue could keep.
  #checkov:skip=CKV_AWS_117:Opt-in: with subnet_ids and security_group_ids (required by vpc_endpoint_ids) the functions run in the VPC; without them they call vendor APIs and AWS public endpoints directly, as nothing of rotor lives in a VPC by default.
  #checkov:skip=CKV_AWS_272:Code is deployed from zips built in CI by scripts/package and tracked by the bootstrap hash; AWS Signer code signing needs S3-hosted signed artifacts, which this deployment does not use.

  function_name                  = each.value
  description                    = "rotor ${var.environment}: ${each.key} (functions/${each.key})"
  role                           = aws_iam_role.function[each.key].arn
  runtime                        = "provided.al2023"
  handler                        = "bootstrap"
  architectures                  = [var.lambda_architecture]
  filename                       = local.function_zips[each.key]
  source_code_hash               = local.function_code_hashes[each.key]
  memory_size                    = var.lambda_memory_mb
  timeout                        = var.lambda_timeout_seconds
  reserved_concurrent_executions = var.lambda_reserved_concurrency
  kms_key_arn                    = aws_kms_key.this.arn
  tags                           = local.tags

  environment {
    variables = local.function_environments[each.key]
  }

  tracing_config {
    mode = "Active"
  }

  # Opt-in (variables subnet_ids, security_group_ids): in the VPC whose endpoints the secrets'
  # resource policy allows (vpc_endpoint_ids).
  dynamic "vpc_config" {
    for_each = length(var.subnet_ids) > 0 ? [1] : []
    content {
      subnet_ids         = var.subnet_ids
      security_group_ids = var.security_group_ids
    }
  }

  depends_on = [
    aws_cloudwatch_log_group.function,
    aws_iam_role_policy.function,
  ]

  lifecycle {
    precondition {
      condition     = fileexists(local.function_zips[each.key])
      error_message = "${local.function_zips[each.key]} is missing: run scripts/package (or point lambda_zip_dir at the folder holding the six zips)."
    }
    precondition {
      condition     = local.zip_architecture == null || local.zip_architecture == var.lambda_architecture
      error_message = "The zips in ${var.lambda_zip_dir} were built for ${coalesce(local.zip_architecture, "?")} (manifest.json) but lambda_architecture is ${var.lambda_architecture}."
    }
  }
}
