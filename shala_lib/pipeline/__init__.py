"""The headless runner and notebook 01's preparation step."""
