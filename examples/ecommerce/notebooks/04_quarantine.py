# Databricks notebook source
# MAGIC %md
# MAGIC # Quarantine
# MAGIC Runs instead of gold when too many rows were rejected: keeps the rejected bronze rows for a look and
# MAGIC fails the run on purpose, so the on-failure notification goes out and nothing downstream publishes.

# COMMAND ----------

dbutils.widgets.dropdown("month", "Oct", ["Oct", "Nov"])
month = dbutils.widgets.get("month")
rate = dbutils.jobs.taskValues.get(taskKey="quality_check", key="reject_rate", debugValue=0.0)

# COMMAND ----------

from pyspark.sql import functions as F

rejected = spark.table(f"workspace.bronze.events_{month.lower()}").filter(
    F.col("price").isNull() | (F.col("price") <= 0)
)
spark.sql("CREATE SCHEMA IF NOT EXISTS workspace.quarantine")
rejected.write.mode("overwrite").format("delta").saveAsTable(f"workspace.quarantine.events_{month.lower()}")
raise RuntimeError(
    f"reject rate {rate:.2%} for {month} is above the limit; rejected rows kept in "
    f"workspace.quarantine.events_{month.lower()}"
)
