"""Match and story: which subscriptions an item satisfies, its regions, and what makes two items one story."""
