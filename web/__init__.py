"""The web widget's page and its small web server (web/serve.py)."""
