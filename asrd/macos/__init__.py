"""What only a Mac has (launchd, power, notifications, files), each behind a small interface tests fake."""
