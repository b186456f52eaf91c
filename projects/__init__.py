# `from projects import gitea` (what deployments/releases.py says) still finds the Gitea adapter,
# which lives with the other forges in projects/forges/.
from projects.forges import gitea as gitea
