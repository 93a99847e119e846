"""Custom Rasa graph components (the only place, with actions/, that imports Rasa)."""
