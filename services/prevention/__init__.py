"""Prevention service: national screening and vaccination reminders for enrolled people."""
