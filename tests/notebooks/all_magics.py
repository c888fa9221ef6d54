# Databricks notebook source
# DBTITLE 1,Set up
import os
print("cwd is the notebook folder:", os.path.basename(os.getcwd()))

# COMMAND ----------

# MAGIC %md
# MAGIC # All the magics
# MAGIC Markdown cells are rendered, never run.

# COMMAND ----------

# DBTITLE 1,Include the helpers with arguments
# MAGIC %run "./shared lib/helper notebook" $greeting="hello world" $times=2

# COMMAND ----------

print(greet("magics"))

# COMMAND ----------

# MAGIC %run ./workflows/nested

# COMMAND ----------

print("nested says", nested_value)

# COMMAND ----------

# MAGIC %python
# MAGIC print("a %python cell")

# COMMAND ----------

# MAGIC %sh
# MAGIC echo "bash $((20 + 22))"
# MAGIC echo "to stderr" 1>&2
# MAGIC test -f all_magics.py && echo "notebook folder is the working directory"

# COMMAND ----------

# MAGIC %sh echo one-line sh

# COMMAND ----------

print("done")
