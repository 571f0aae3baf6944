"""Choosing and checking VADER thresholds against labelled data."""
