"""Third-party portals the suite is proven on, each started per run by a target provider."""
