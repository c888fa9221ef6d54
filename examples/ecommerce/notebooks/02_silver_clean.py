# Databricks notebook source
# MAGIC %md
# MAGIC # Silver: clean events
# MAGIC - drops events with an invalid price (missing, zero or negative) and exact duplicates
# MAGIC - parses `event_time` (`2019-10-01 00:00:00 UTC`) into a timestamp and adds `event_date`
# MAGIC - derives `product_name` from the last level of `category_code` (`unknown` when it is empty)
# MAGIC
# MAGIC The table holds every month processed so far: this month's rows are replaced in one commit (the
# MAGIC other months are read back and rewritten with it), so a re-run or a failure never loses a month.

# COMMAND ----------

# DBTITLE 1,Parameters
dbutils.widgets.dropdown("month", "Oct", ["Oct", "Nov"])
dbutils.widgets.text("target_table", "workspace.silver.ecommerce_cleaned")
month = dbutils.widgets.get("month")
target_table = dbutils.widgets.get("target_table")

# COMMAND ----------

from pyspark.sql import functions as F

bronze = spark.table(f"workspace.bronze.events_{month.lower()}")
columns = [
    "event_time",
    "event_type",
    "product_id",
    "category_id",
    "category_code",
    "brand",
    "price",
    "user_id",
    "user_session",
]
cleaned = (
    bronze.select(*columns)
    .filter(F.col("price").isNotNull() & (F.col("price") > 0))
    .dropDuplicates()
    .withColumn("event_time", F.col("event_time").cast("timestamp"))
    .withColumn("event_date", F.to_date("event_time"))
    .withColumn(
        "product_name",
        F.when(
            F.col("category_code").isNotNull(), F.element_at(F.split(F.col("category_code"), r"\."), -1)
        ).otherwise(F.lit("unknown")),
    )
    .withColumn("month", F.lit(month))
)

# COMMAND ----------

spark.sql("CREATE SCHEMA IF NOT EXISTS workspace.silver")
if spark.catalog.tableExists(target_table):
    others = spark.table(target_table).filter(F.col("month") != month)
    cleaned = others.unionByName(cleaned)
cleaned.write.mode("overwrite").format("delta").saveAsTable(target_table)
rows = spark.table(target_table).filter(F.col("month") == month).count()
print(f"silver rows for {month}: {rows}")
dbutils.jobs.taskValues.set(key="rows", value=rows)
