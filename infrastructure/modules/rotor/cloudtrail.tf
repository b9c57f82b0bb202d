# Opt-in (create_cloudtrail): the trail auditors read rotations in. Multi-Region (the secrets
# have replicas; IAM is global), log file validation on (a digest file per hour proves the log
# files were not changed or removed), encrypted with the deployment's key, delivered to its own
# bucket (versioned, public access blocked, TLS only, kept cloudtrail_retention_days).
# Management events cover what a rotation does: Secrets Manager GetSecretValue, PutSecretValue
# and UpdateSecretVersionStage, KMS Encrypt/Decrypt, IAM CreateAccessKey/UpdateAccessKey/
# DeleteAccessKey, Step Functions StartExecution, Lambda UpdateFunctionCode (no data events:
# the functions' invocations are in the execution histories).
#
# Or name the account's existing trail (cloudtrail_name): nothing is created, and the outputs
# tell auditors where to look.
#
# The trail and its bucket are the administrator's apply, as the key is: ci-deploy can read
# them (a plan refreshes them) but may not create, change, stop or delete them; a deployment
# role that could stop its own audit trail would make the trail worthless.

locals {
  create_trail = var.create_cloudtrail
  trail_name   = local.create_trail ? "${local.prefix}-audit" : var.cloudtrail_name
  trail_arn    = "arn:${local.partition}:cloudtrail:${local.region}:${local.account_id}:trail/${local.prefix}-audit"
  trail_bucket = "${local.prefix}-audit-trail-${local.account_id}"
}

resource "aws_s3_bucket" "trail" {
  #checkov:skip=CKV_AWS_18:This bucket is the audit log itself; its access logs would need another bucket, and every read of it is a CloudTrail data event if the account records them.
  #checkov:skip=CKV_AWS_144:Cross-region replication is the account's backup policy, not rotor's; the trail is multi-Region and the bucket versioned.
  #checkov:skip=CKV2_AWS_62:No one is notified per log file; the trail's digest files (log file validation) are what proves the log complete.
  count = local.create_trail ? 1 : 0

  bucket = local.trail_bucket
  tags   = local.tags
}

resource "aws_s3_bucket_public_access_block" "trail" {
  count = local.create_trail ? 1 : 0

  bucket                  = aws_s3_bucket.trail[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "trail" {
  count = local.create_trail ? 1 : 0

  bucket = aws_s3_bucket.trail[0].id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "trail" {
  count = local.create_trail ? 1 : 0

  bucket = aws_s3_bucket.trail[0].id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "trail" {
  count = local.create_trail ? 1 : 0

  bucket = aws_s3_bucket.trail[0].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.this.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "trail" {
  count = local.create_trail ? 1 : 0

  bucket = aws_s3_bucket.trail[0].id
  rule {
    id     = "keep-the-audit-trail-for-its-retention"
    status = "Enabled"
    filter {}
    expiration {
      days = var.cloudtrail_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = var.cloudtrail_retention_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

locals {
  trail_bucket_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "CloudTrailChecksTheBucketAcl"
        Effect    = "Allow"
        Principal = { Service = "cloudtrail.amazonaws.com" }
        Action    = "s3:GetBucketAcl"
        Resource  = "arn:${local.partition}:s3:::${local.trail_bucket}"
        Condition = { StringEquals = { "aws:SourceArn" = local.trail_arn } }
      },
      {
        Sid       = "CloudTrailWritesThisTrailOnly"
        Effect    = "Allow"
        Principal = { Service = "cloudtrail.amazonaws.com" }
        Action    = "s3:PutObject"
        Resource  = "arn:${local.partition}:s3:::${local.trail_bucket}/AWSLogs/${local.account_id}/*"
        Condition = { StringEquals = { "aws:SourceArn" = local.trail_arn } }
      },
      {
        Sid       = "TlsOnly"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = ["arn:${local.partition}:s3:::${local.trail_bucket}", "arn:${local.partition}:s3:::${local.trail_bucket}/*"]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
    ]
  }
}

resource "aws_s3_bucket_policy" "trail" {
  count = local.create_trail ? 1 : 0

  bucket     = aws_s3_bucket.trail[0].id
  policy     = jsonencode(local.trail_bucket_policy)
  depends_on = [aws_s3_bucket_public_access_block.trail]
}

resource "aws_cloudtrail" "this" {
  #checkov:skip=CKV_AWS_252:No SNS notification per log file: auditors read the trail (and its digests), and rotor's own alarms go to the alarm topic.
  #checkov:skip=CKV2_AWS_10:The trail is read in CloudTrail and S3 (README, "Where an auditor finds each record"); a CloudWatch Logs copy would need another role and log group that ci-deploy could then change.
  count = local.create_trail ? 1 : 0

  name                          = local.trail_name
  s3_bucket_name                = aws_s3_bucket.trail[0].id
  is_multi_region_trail         = true
  include_global_service_events = true
  enable_log_file_validation    = true
  kms_key_id                    = aws_kms_key.this.arn
  tags                          = local.tags

  depends_on = [aws_s3_bucket_policy.trail]
}
