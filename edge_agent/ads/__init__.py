"""Ads: the rule table, the decision, the play scheduler and the players that show the result."""
