output "bucket_name" {
  description = "The archive bucket"
  value       = aws_s3_bucket.archive.bucket
}

output "bucket_arn" {
  description = "The archive bucket's ARN"
  value       = aws_s3_bucket.archive.arn
}

output "archive_url" {
  description = "TRIGGERS_ARCHIVE_URL for the functions"
  value       = "s3://${aws_s3_bucket.archive.bucket}/${var.archive_prefix}"
}
