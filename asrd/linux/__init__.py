"""What only Linux has: the systemd user unit."""
