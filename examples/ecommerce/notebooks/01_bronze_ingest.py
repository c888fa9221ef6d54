# Databricks notebook source
# MAGIC %md
# MAGIC # Bronze: ingest one month of raw events
# MAGIC Reads the month's CSV from the landing volume as it arrived and keeps it unchanged, plus the ingest
# MAGIC time and the source file, in `workspace.bronze.events_<month>` (overwritten: re-running a month is safe).

# COMMAND ----------

# DBTITLE 1,Parameters
dbutils.widgets.dropdown("month", "Oct", ["Oct", "Nov"])
dbutils.widgets.text("source_path", "/Volumes/workspace/ecommerce/landing")
month = dbutils.widgets.get("month")
source_path = dbutils.widgets.get("source_path")
print(f"Ingesting 2019-{month} from {source_path}")

# COMMAND ----------

from pyspark.sql import functions as F

spark.sql("CREATE SCHEMA IF NOT EXISTS workspace.bronze")
raw = spark.read.csv(f"{source_path}/2019-{month}.csv", header=True, inferSchema=True)
bronze = raw.withColumn("ingested_at", F.current_timestamp()).withColumn("source_month", F.lit(month))
bronze.write.mode("overwrite").format("delta").saveAsTable(f"workspace.bronze.events_{month.lower()}")

# COMMAND ----------

rows = spark.table(f"workspace.bronze.events_{month.lower()}").count()
print(f"bronze rows for {month}: {rows}")
dbutils.jobs.taskValues.set(key="rows", value=rows)
dbutils.notebook.exit(str(rows))
