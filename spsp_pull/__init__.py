"""spsp-pull: an Interledger SPSP pull-pointer server."""
