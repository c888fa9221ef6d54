# Databricks notebook source
print("silver")
