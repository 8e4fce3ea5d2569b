"""The REST API, the dashboard and Slack interactivity (`iterloop api`)."""
