# Databricks notebook source
# MAGIC %md
# MAGIC # Gold: business aggregates
# MAGIC - `workspace.gold.daily_revenue`: purchases, buyers and revenue per day
# MAGIC - `workspace.gold.funnel`: users who viewed, carted and purchased, and the conversion between steps
# MAGIC - `workspace.gold.top_brands`: the ten brands with the most purchase revenue
# MAGIC
# MAGIC Computed over every month in silver, and replaced whole on each run.

# COMMAND ----------

dbutils.widgets.text("source_path", "workspace.silver.ecommerce_cleaned")
source = dbutils.widgets.get("source_path")

# COMMAND ----------

import json

from pyspark.sql import functions as F

silver = spark.table(source)
purchases = silver.filter(F.col("event_type") == "purchase")
spark.sql("CREATE SCHEMA IF NOT EXISTS workspace.gold")

# COMMAND ----------

# DBTITLE 1,Daily revenue
daily = (
    purchases.groupBy("event_date")
    .agg(
        F.count("*").alias("purchases"),
        F.countDistinct("user_id").alias("buyers"),
        F.round(F.sum("price"), 2).alias("revenue"),
    )
    .orderBy("event_date")
)
daily.write.mode("overwrite").format("delta").saveAsTable("workspace.gold.daily_revenue")
display(daily)

# COMMAND ----------

# DBTITLE 1,View -> cart -> purchase funnel
by_type = silver.groupBy("event_type").agg(F.countDistinct("user_id").alias("users"))
users = {row["event_type"]: row["users"] for row in by_type.collect()}
views, carts, buys = (users.get(t, 0) for t in ("view", "cart", "purchase"))
funnel = spark.createDataFrame(
    [
        ("view", views, 1.0),
        ("cart", carts, round(carts / views, 6) if views else 0.0),
        ("purchase", buys, round(buys / carts, 6) if carts else 0.0),
    ],
    "step string, users long, conversion_from_previous double",
)
funnel.write.mode("overwrite").format("delta").saveAsTable("workspace.gold.funnel")
display(funnel)

# COMMAND ----------

# DBTITLE 1,Top brands
top_brands = (
    purchases.filter(F.col("brand").isNotNull())
    .groupBy("brand")
    .agg(F.round(F.sum("price"), 2).alias("revenue"), F.count("*").alias("purchases"))
    .orderBy(F.desc("revenue"), "brand")
    .limit(10)
)
top_brands.write.mode("overwrite").format("delta").saveAsTable("workspace.gold.top_brands")
display(top_brands)

# COMMAND ----------

total = purchases.agg(F.round(F.sum("price"), 2).alias("revenue")).first()["revenue"] or 0.0
summary = {"revenue": total, "buyers": buys, "days": daily.count()}
print(json.dumps(summary))
dbutils.notebook.exit(json.dumps(summary))
