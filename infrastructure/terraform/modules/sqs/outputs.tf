output "delivery_queue_arn" {
  description = "The delivery queue (one message per delivery)"
  value       = aws_sqs_queue.delivery.arn
}

output "delivery_queue_url" {
  description = "The delivery queue's URL"
  value       = aws_sqs_queue.delivery.url
}

output "delivery_queue_name" {
  description = "The delivery queue's name (CloudWatch dimension)"
  value       = aws_sqs_queue.delivery.name
}

output "dlq_arn" {
  description = "The dead-letter queue"
  value       = aws_sqs_queue.delivery_dlq.arn
}

output "dlq_name" {
  description = "The dead-letter queue's name (CloudWatch dimension)"
  value       = aws_sqs_queue.delivery_dlq.name
}
