"""The OpenAI Responses API, stateful: /v1/responses backed by the conversation store."""
