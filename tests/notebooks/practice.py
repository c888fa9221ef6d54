# Databricks notebook source
# MAGIC %md
# MAGIC #### **1. Add parameter widgets to notebooks**

# COMMAND ----------

# Add widgets for parameters
dbutils.widgets.text("source_path", "workspace.silver.ecommerce_cleaned")
dbutils.widgets.dropdown("layer", "bronze", ["bronze","silver","gold"])
dbutils.widgets.dropdown("month", "Oct", ["Oct", "Nov"])

# COMMAND ----------

# Use parameters
source = dbutils.widgets.get("source_path")
layer = dbutils.widgets.get("layer")
month = dbutils.widgets.get("month")

# COMMAND ----------

print(source)
print(layer)
print(month)
