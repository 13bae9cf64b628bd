"""AWS Lambda adapters: thin entry points over the same app, storage and workers.

- ``lambda_api.handler``: the FastAPI app through Mangum (API Gateway REST proxy events);
- ``lambda_authorizer.handler``: the REQUEST authorizer (X-API-Key -> SHA-256 -> KeyHashIndex);
- ``lambda_archiver.handler``: DynamoDB Streams TTL removals -> gzip JSON Lines in the archive;
- ``lambda_worker.handler``: SQS delivery batches (built on its own branch).

Nothing here runs at import: each handler builds what it needs on its container's first
invocation (:class:`~triggers_api.aws.container.Container`) and keeps it for the next ones.
"""
