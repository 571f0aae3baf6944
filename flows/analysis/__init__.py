"""What one post is: clean text, languages, VADER polarity, hashtags (pure)."""
