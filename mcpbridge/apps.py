from django.apps import AppConfig


class McpbridgeConfig(AppConfig):
    name = "mcpbridge"
