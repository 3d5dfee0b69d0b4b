"""Result records and experiment tracking."""
