"""The forges a project's repository lives on: Gitea, and the platform's own local forge."""
