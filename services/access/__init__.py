"""Access-to-care service: teleconsultation requests, here opened from critical chronic alerts."""
