"""coze_async: asyncio-native SDK for the Coze OpenAPI."""
