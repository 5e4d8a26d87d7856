"""harbor-cache: Harbor on its own AWS VM as a pull-through cache for clusters and CI runners."""
