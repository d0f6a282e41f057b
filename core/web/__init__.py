"""The public help center: pages customers see."""
