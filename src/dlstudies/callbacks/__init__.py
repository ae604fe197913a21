"""Lightning callbacks that dlstudies adds to Lightning's own."""
