# Alarms to an SNS topic encrypted with the deployment's key:
# - failed executions of the rotation state machine (and of the age check);
# - Rotor/RotationFailed per secret (audit-log puts it for abandoned and refused rotations);
# - Rotor/SecretAgeDays per scheduled vendor-api-key secret, above its max_age_days.

resource "aws_sns_topic" "alarms" {
  name              = "${local.prefix}-alarms"
  kms_master_key_id = aws_kms_key.this.arn
  tags              = local.tags
}

resource "aws_sns_topic_policy" "alarms" {
  arn = aws_sns_topic.alarms.arn
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "CloudWatchAlarmsOfThisAccountPublish"
      Effect    = "Allow"
      Principal = { Service = "cloudwatch.amazonaws.com" }
      Action    = "sns:Publish"
      Resource  = aws_sns_topic.alarms.arn
      Condition = {
        StringEquals = { "aws:SourceAccount" = local.account_id }
        ArnLike      = { "aws:SourceArn" = "arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:${local.prefix}-*" }
      }
    }]
  })
}

resource "aws_sns_topic_subscription" "email" {
  for_each = toset(var.alarm_email_addresses)

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.value
}

resource "aws_cloudwatch_metric_alarm" "executions_failed" {
  alarm_name          = "${local.prefix}-rotation-executions-failed"
  alarm_description   = "A rotor rotation execution failed, timed out or was aborted (${local.state_machine_name}). Read its history: rotor history, or the Step Functions console."
  namespace           = "AWS/States"
  metric_name         = "ExecutionsFailed"
  dimensions          = { StateMachineArn = aws_sfn_state_machine.rotation.arn }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "age_check_failed" {
  count = length(aws_sfn_state_machine.age_check)

  alarm_name          = "${local.prefix}-age-check-executions-failed"
  alarm_description   = "The rotor age check failed (${local.age_check_name}): SecretAgeDays is not being measured."
  namespace           = "AWS/States"
  metric_name         = "ExecutionsFailed"
  dimensions          = { StateMachineArn = aws_sfn_state_machine.age_check[0].arn }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "rotation_failed" {
  for_each = var.secrets

  alarm_name          = "${local.prefix}-rotation-failed-${each.key}"
  alarm_description   = "A rotation of ${each.value.name} was abandoned or refused (Rotor/RotationFailed): AWSCURRENT did not change."
  namespace           = local.metric_namespace
  metric_name         = "RotationFailed"
  dimensions          = { SecretId = each.value.name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "secret_age" {
  for_each = local.age_check_schedules

  alarm_name          = "${local.prefix}-secret-age-${each.key}"
  alarm_description   = "${each.value.name} is older than ${each.value.max_age_days} days (Rotor/SecretAgeDays): get a new key from the vendor and run rotor rotate."
  namespace           = local.metric_namespace
  metric_name         = "SecretAgeDays"
  dimensions          = { SecretId = each.value.name }
  statistic           = "Maximum"
  period              = 86400
  evaluation_periods  = 1
  threshold           = each.value.max_age_days
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  tags                = local.tags
}
