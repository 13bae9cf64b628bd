variable "name_prefix" {
  description = "Queues are <name_prefix>-delivery and <name_prefix>-delivery-dlq"
  type        = string
}
