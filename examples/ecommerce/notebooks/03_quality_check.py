# Databricks notebook source
# MAGIC %md
# MAGIC # Quality check
# MAGIC The seed's practice widgets pick what to check. The task values it sets (row counts and the reject
# MAGIC rate) feed the condition task that routes the run to gold or to quarantine.

# COMMAND ----------

# Add widgets for parameters
dbutils.widgets.text("source_path", "workspace.silver.ecommerce_cleaned")
dbutils.widgets.dropdown("layer", "bronze", ["bronze", "silver", "gold"])
dbutils.widgets.dropdown("month", "Oct", ["Oct", "Nov"])

# COMMAND ----------

source = dbutils.widgets.get("source_path")
layer = dbutils.widgets.get("layer")
month = dbutils.widgets.get("month")

print(f"Processing {layer} layer from {source} for {month}")

# COMMAND ----------

from pyspark.sql import functions as F

bronze_rows = spark.table(f"workspace.bronze.events_{month.lower()}").count()
checked = spark.table(source).filter(F.col("month") == month)
silver_rows = checked.count()
reject_rate = round(1 - silver_rows / bronze_rows, 6) if bronze_rows else 1.0
nulls = checked.filter(F.col("event_time").isNull() | F.col("user_id").isNull()).count()
if nulls:
    raise ValueError(f"{nulls} rows of {source} lack event_time or user_id")

dbutils.jobs.taskValues.set(key="bronze_rows", value=bronze_rows)
dbutils.jobs.taskValues.set(key="silver_rows", value=silver_rows)
dbutils.jobs.taskValues.set(key="reject_rate", value=reject_rate)
print(f"bronze {bronze_rows}, silver {silver_rows}, reject rate {reject_rate:.4%}")
