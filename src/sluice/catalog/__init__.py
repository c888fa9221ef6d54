"""The store-owned catalog seen from Spark: session registration, client patches and SQL interception."""
